"""The errors tripletlab raises for what its user gave it (Keras-free).

Each is a subclass of the built-in exception it stands for, so ``except ValueError`` (or
``TypeError``, ``ImportError``, ``FileNotFoundError``...) in users' code keeps working, and of
:class:`TripletlabError`, which is what the command line reports on one line with exit status 2.
Any other exception is a bug, and keeps its traceback.

* :class:`ConfigError` (``ValueError``): an option, argument or value that cannot be used
  (unknown key, value out of range, options that clash, data that cannot train, the damaged
  content of a file the user named); :class:`ConfigTypeError` (also ``TypeError``) for a value
  of the wrong type.
* :class:`MissingExtraError` (``ImportError``): an optional dependency is not installed; the
  message names the pip extra.
* :class:`UserFileError` (``OSError``) and its subclasses: a path the user named is missing,
  is a folder where a file was expected (or the reverse), or is already taken;
  :class:`ExperimentInUseError` (also ``BlockingIOError``): the folder is locked by another
  running tripletlab process.

Example:
  >>> from tripletlab.errors import ConfigError
  >>> issubclass(ConfigError, ValueError)
  True
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "ExperimentInUseError",
    "MissingExtraError",
    "TripletlabError",
    "UserFileError",
    "UserFileExistsError",
    "UserFileNotFoundError",
    "UserIsADirectoryError",
    "UserNotADirectoryError",
]


class TripletlabError(Exception):
    """The base of the errors caused by user input (the command line prints them on one line)."""


class ConfigError(TripletlabError, ValueError):
    """An option, argument or value that cannot be used: unknown key, bad or clashing values,
    data that cannot train, or the damaged content of a file the user named."""


class ConfigTypeError(ConfigError, TypeError):
    """An option or argument of the wrong type."""


class MissingExtraError(TripletlabError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""


class UserFileError(TripletlabError, OSError):
    """A path the user named cannot be used as it is."""


class UserFileNotFoundError(UserFileError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class UserIsADirectoryError(UserFileError, IsADirectoryError):
    """A folder where a file was expected."""


class UserNotADirectoryError(UserFileError, NotADirectoryError):
    """A file where a folder was expected."""


class UserFileExistsError(UserFileError, FileExistsError):
    """A target that already holds something tripletlab must not replace."""


class ExperimentInUseError(UserFileError, BlockingIOError):
    """A folder that another running tripletlab process holds (:mod:`tripletlab.folder_lock`)."""
