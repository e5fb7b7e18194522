"""The lock of an experiment folder: one tripletlab process writes into a folder at a time.

Every command that writes into an experiment folder (``tripletlab train`` in all its forms,
``report``, ``visualize --experiment``) holds this lock from before its first write to its
exit. A second process asking for the same folder is refused at once with
:class:`~tripletlab.errors.ExperimentInUseError`, which says who holds it (process id, host,
command, since when). So two runs never mix their files in one folder, and ``--overwrite``
never removes the files of a run that is still going.

The lock is the operating system's (``fcntl.flock`` on the file ``.tripletlab.lock`` inside
the folder), so it dies with its process however the process ends, ``kill -9`` included: a
lock file left behind by a killed run locks nothing, and the next run takes it over. A
process removes the lock file when it releases the lock, and removes the folder too when it
created it and nothing else was written there (a run refused for bad data leaves no trace).

Opening the folder also checks, before any data or Keras is loaded, that it can be written:
a path that is a file, a folder or parent without write permission, or a read-only file
system is a :class:`~tripletlab.errors.UserFileError` naming the path.

Example:
  >>> with FolderLock("runs/digits", command="train"):  # doctest: +SKIP
  ...     ...  # write into runs/digits
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from tripletlab.errors import (
    ExperimentInUseError,
    UserFileError,
    UserFileExistsError,
    UserNotADirectoryError,
)

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

LOCK_FILE = ".tripletlab.lock"
"""The name of the lock file inside an experiment folder."""


class FolderLock:
    """An inter-process lock on a folder that a tripletlab command writes into.

    Taking it creates the folder (and its missing parents) when needed. The lock is reentrant
    within one ``FolderLock`` object: a function that takes it again while its caller holds
    it (``train()`` called by the command line) does not block itself.

    Args:
      folder: the folder to lock.
      command: what holds it, as shown to a second process (``"train"``, ``"report"``...).
      option: the name of the argument that named the folder, for error messages
        (``"--model-dir"``, ``"--experiment"``).
    """

    def __init__(self, folder: str | os.PathLike, *, command: str,
                 option: str = "--model-dir"):
        self.folder = Path(folder)
        self.command = command
        self.option = option
        self._descriptor: int | None = None
        self._depth = 0
        self._created: list[Path] = []

    @property
    def path(self) -> Path:
        """The lock file: ``FOLDER/.tripletlab.lock``."""
        return self.folder / LOCK_FILE

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._depth > 0

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def acquire(self) -> None:
        """Takes the lock, creating the folder if needed; at once or not at all.

        Raises:
          ExperimentInUseError: another process holds the lock.
          UserFileError: the path cannot be a writable folder (a file in the way, no write
            permission, a read-only file system); nothing was created.
        """
        if self._depth:
            self._depth += 1
            return
        self._created = create_folder(self.folder, self.option)
        try:
            self._descriptor = self._lock_file()
        except BaseException:
            remove_empty_folders(self._created)
            raise
        self._depth = 1
        self._write_holder()

    def release(self) -> None:
        """Releases the lock (the last release of a reentrant hold): removes the lock file,
        then the folders this lock created if they are empty."""
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still held: a waiting process then retries on a new file
        os.close(self._descriptor)
        self._descriptor = None
        remove_empty_folders(self._created)
        self._created = []

    def _lock_file(self) -> int:
        """Opens and locks the lock file; retries when the file was replaced meanwhile."""
        while True:
            descriptor = self._open_lock_file()
            if fcntl is None:
                warnings.warn("This platform has no fcntl.flock: tripletlab cannot keep a "
                              f"second process out of {str(self.folder)!r}.", UserWarning,
                              stacklevel=3)
                return descriptor
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = await_holder(descriptor)
                os.close(descriptor)
                raise ExperimentInUseError(in_use_message(self.folder, holder,
                                                          self.option)) from None
            if same_file(descriptor, self.path):
                return descriptor
            os.close(descriptor)  # the holder removed that file as it released: lock the new one

    def _open_lock_file(self) -> int:
        """Opens (creates) the lock file; recreates the folder if a process that had created
        it removed it meanwhile (it wrote nothing there)."""
        while True:
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                               0o644)
            except FileNotFoundError:
                self._created += create_folder(self.folder, self.option)
            except OSError as error:
                raise unwritable_error(self.folder, self.option, error) from None

    def _write_holder(self) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, (json.dumps(holder) + "\n").encode("utf-8"), 0)


def create_folder(folder: Path, option: str) -> list[Path]:
    """Creates ``folder`` and its missing parents; returns those created, outermost first.

    Raises:
      UserFileError: a part of the path is a file, or a folder cannot be written.
    """
    missing = []
    existing = folder
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: not a folder to create
            raise UserFileExistsError(f"Expected `{option}` to be a folder. Received: "
                                      f"{str(existing)!r} is a broken symbolic link.")
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        what = "the path" if existing == folder else f"its part {str(existing)!r}"
        raise UserNotADirectoryError(f"Expected `{option}` to be a folder. Received: "
                                     f"{str(folder)!r}, where {what} is a file.")
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # made by another process meanwhile
            continue
        except OSError as error:
            remove_empty_folders(created)
            raise unwritable_error(path.parent, option, error, folder) from None
        created.append(path)
    if not created and not os.access(folder, os.W_OK | os.X_OK):
        raise unwritable_error(folder, option, PermissionError(errno.EACCES, "Permission "
                                                                            "denied"))
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Removes the given folders, innermost first, where they are empty."""
    for path in reversed(folders):
        with contextlib.suppress(OSError):
            path.rmdir()


def unwritable_error(where: Path, option: str, error: OSError,
                     folder: Path | None = None) -> UserFileError:
    """The one-line error for a folder that cannot be written (``where``: the folder that
    refused; ``folder``: the one asked for, when different)."""
    reasons = {errno.EACCES: "no write permission for this user",
               errno.EPERM: "no write permission for this user",
               errno.EROFS: "it is on a read-only file system",
               errno.ENOSPC: "the disk is full",
               errno.ENOTDIR: "a part of the path is a file"}
    reason = reasons.get(error.errno, error.strerror or type(error).__name__)
    asked = f" to create {str(folder)!r}" if folder is not None and folder != where else ""
    return UserFileError(f"Expected `{option}` to be a folder tripletlab can write. Received: "
                         f"{str(where)!r}{asked}: {reason}.")


def same_file(descriptor: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``descriptor``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def read_holder(descriptor: int) -> dict[str, Any]:
    """What the lock file says of the process holding it (``{}`` when it cannot tell: the
    holder may not have written it yet)."""
    try:
        data = os.pread(descriptor, 4096, 0)
        holder = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def await_holder(descriptor: int, seconds: float = 2.0) -> dict[str, Any]:
    """:func:`read_holder`, waiting up to ``seconds`` for a holder that has just taken the lock
    to write who it is (it writes right after taking it)."""
    deadline = time.monotonic() + seconds
    holder = read_holder(descriptor)
    while not holder and time.monotonic() < deadline:
        time.sleep(0.02)
        holder = read_holder(descriptor)
    return holder


def in_use_message(folder: Path, holder: dict[str, Any], option: str) -> str:
    """The refusal of a second process: who holds ``folder`` and what to do."""
    who = f"a running `tripletlab {holder['command']}`" if holder.get("command") else (
        "a running tripletlab")
    details = []
    if holder.get("pid") is not None:
        details.append(f"process {holder['pid']}")
    if holder.get("host"):
        details.append(f"on host {holder['host']}")
    if holder.get("since"):
        details.append(f"since {holder['since']}")
    where = f" ({' '.join(details)})" if details else ""
    return (f"{str(folder)!r} is in use by {who}{where}. Wait for it to finish (or stop it), "
            f"or choose another `{option}`.")
