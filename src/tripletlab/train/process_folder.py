"""The experiment folder each process of a several-host run writes.

When several processes train together (``distribute = "data-parallel"`` over several hosts),
they all run the same steps, but only process 0 writes the experiment folder the user named.
Every other process writes into a private temporary folder of its own, removed when the run
ends; to resume, it starts from a copy of the named folder's checkpoint (read, never written).
With one process the named folder is used as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import NamedTuple

from tripletlab import experiment as ex
from tripletlab.train.distribution import process_index

# What another process copies of the named folder to resume: the checkpoint, the best model
# so far (scored at the end) and what the
# resumed run reads next to it.
RESUME_FILES = (ex.MANIFEST_FILE, ex.CONFIG_FILE, ex.LOG_FILE, ex.CHECKPOINT_DIR, ex.BEST_MODEL)


class ProcessFolder(NamedTuple):
    """The folder a process writes, and how it starts there.

    Attributes:
      experiment: the :class:`~tripletlab.experiment.Experiment` this process writes.
      resume: whether this process resumes there.
      overwrite: whether this process may replace an earlier run there.
    """

    experiment: ex.Experiment
    resume: bool
    overwrite: bool


@contextlib.contextmanager
def process_folder(model_dir: str | os.PathLike | ex.Experiment, *, resume: bool,
                   overwrite: bool) -> Iterator[ProcessFolder]:
    """The folder this process writes: ``model_dir`` for process 0, a private copy for the
    others (see the module's description), removed on exit."""
    named = model_dir if isinstance(model_dir, ex.Experiment) else ex.Experiment(model_dir)
    if process_index() == 0:
        yield ProcessFolder(named, resume, overwrite)
        return
    private = tempfile.mkdtemp(prefix=f"tripletlab-process-{process_index()}-")
    try:
        if resume:
            copy_for_resume(named.folder, private)
        yield ProcessFolder(ex.Experiment(os.path.join(private, "run")), resume, False)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def copy_for_resume(source: os.PathLike, private: str) -> None:
    """Copies :data:`RESUME_FILES` of the named folder ``source`` into ``private``/run."""
    target = os.path.join(private, "run")
    os.makedirs(target)
    for name in RESUME_FILES:
        path = os.path.join(source, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(target, name))
        elif os.path.isfile(path):
            shutil.copy2(path, os.path.join(target, name))
