"""The experiment folder's lock (docs/training.md, "One run per folder"): one process at a time,
refused at once with who holds it, gone with its process (kill -9 included), and a folder that
cannot be written refused before anything is created."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from tripletlab.errors import (
    ExperimentInUseError,
    UserFileError,
    UserNotADirectoryError,
)
from tripletlab.folder_lock import LOCK_FILE, FolderLock, unwritable_error

HOLDER = textwrap.dedent("""
    import sys, time
    from tripletlab.folder_lock import FolderLock
    lock = FolderLock(sys.argv[1], command="train")
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """A process that holds the lock of ``tmp_path / "run"`` until killed."""
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield folder, process
    finally:
        process.kill()
        process.wait(timeout=30)


def test_second_process_is_refused_naming_the_holder(holder):
    folder, process = holder
    with pytest.raises(ExperimentInUseError) as caught:
        FolderLock(folder, command="report", option="--experiment").acquire()
    message = str(caught.value)
    assert f"process {process.pid} on host {socket.gethostname()}" in message
    assert "running `tripletlab train`" in message
    assert "choose another `--experiment`" in message
    assert isinstance(caught.value, BlockingIOError)


def test_kill_9_releases_the_lock_and_the_next_process_takes_it_over(holder):
    folder, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert (folder / LOCK_FILE).is_file()  # left behind, and it locks nothing
    lock = FolderLock(folder, command="train")
    with lock:
        assert lock.held
    assert not (folder / LOCK_FILE).exists()
    assert folder.is_dir()  # not created by this lock: stays


def test_reentrant_within_one_object_and_released_by_the_last_exit(tmp_path):
    lock = FolderLock(tmp_path / "run", command="train")
    with lock:
        with lock:
            assert (tmp_path / "run" / LOCK_FILE).is_file()
        assert lock.held
        with pytest.raises(ExperimentInUseError):
            FolderLock(tmp_path / "run", command="report").acquire()
    assert not lock.held


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    with FolderLock(tmp_path / "a" / "b" / "run", command="train"):
        assert (tmp_path / "a" / "b" / "run").is_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_outputs_stays_without_the_lock_file(tmp_path):
    with FolderLock(tmp_path / "run", command="train"):
        (tmp_path / "run" / "config.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]


@pytest.mark.parametrize("target", ["file", "file/run"], ids=["path-is-a-file", "parent-is-a-file"])
def test_a_file_in_the_way_is_refused_and_nothing_created(tmp_path, target):
    (tmp_path / "file").write_text("the user's")
    with pytest.raises(UserNotADirectoryError, match=r"Expected `--model-dir` to be a folder.*"
                                                     r"is a file"):
        FolderLock(tmp_path / target, command="train").acquire()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "the user's"


def test_read_only_file_system_is_named_in_the_message(tmp_path):
    error = unwritable_error(tmp_path, "--model-dir", OSError(errno.EROFS, "Read-only"))
    assert isinstance(error, UserFileError)
    assert str(error) == (f"Expected `--model-dir` to be a folder tripletlab can write. "
                          f"Received: {str(tmp_path)!r}: it is on a read-only file system.")


def without_permission_override() -> list[str]:
    """The command prefix that runs a process without the right to ignore file permissions:
    nothing for a user other than root; for root, ``setpriv`` dropping CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (root then obeys the permission bits of the folders it owns)."""
    if os.geteuid() != 0:
        return []
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv):
        pytest.skip("runs as root and setpriv (util-linux) is missing: cannot drop "
                    "CAP_DAC_OVERRIDE to test a folder without write permission")
    return [setpriv, "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]


def test_unwritable_parent_is_refused_before_any_work(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        command = [*without_permission_override(), sys.executable, "-m", "tripletlab.cli.main",
                   "train", "--dataset", "digits", "--model-dir", str(parent / "run")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    finally:
        parent.chmod(0o755)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"tripletlab train: error: Expected `--model-dir` to be a folder tripletlab can write. "
        f"Received: {str(parent)!r} to create {str(parent / 'run')!r}: no write permission "
        "for this user."]
    assert "Training on" not in result.stdout and "Data " not in result.stdout  # before Keras
    assert list(parent.iterdir()) == []


LATE_HOLDER = textwrap.dedent("""
    import fcntl, json, os, sys, time
    folder = sys.argv[1]
    os.makedirs(folder)
    descriptor = os.open(os.path.join(folder, ".tripletlab.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked", flush=True)
    time.sleep(0.5)  # a holder slow to say who it is, as under load
    os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "command": "train"}).encode(), 0)
    time.sleep(120)
""")


def test_refusal_waits_for_a_new_holder_to_say_who_it_is(tmp_path):
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", LATE_HOLDER, str(folder)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(ExperimentInUseError, match=rf"`tripletlab train` \(process "
                                                       rf"{process.pid}\)"):
            FolderLock(folder, command="train").acquire()
    finally:
        process.kill()
        process.wait(timeout=30)
