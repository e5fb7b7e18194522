"""Argument validation with one message shape for the whole library.

Every check raises :class:`tripletlab.errors.ConfigError` (a ``ValueError``), or
:class:`~tripletlab.errors.ConfigTypeError` (also a ``TypeError``) for a wrong type, whose message
names the argument, what was expected and what was received, in Keras' form::

    Expected one of {'L2', 'squared-L2'}. Received: distance='cosine'
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from tripletlab.errors import (
    ConfigError,
    ConfigTypeError,
    UserFileNotFoundError,
    UserIsADirectoryError,
)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Returns ``value`` if it is one of ``allowed``; raises ``ConfigError`` otherwise.

    Args:
      name: the argument's name, used in the message.
      value: what the caller passed.
      allowed: the canonical spellings.

    Returns:
      ``value`` unchanged.

    Raises:
      ConfigError: ``value`` is not one of ``allowed``; the message suggests the closest
        spelling when there is one.
    """
    allowed = tuple(allowed)
    if isinstance(value, str) and value in allowed:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1)
        if not close:
            lowered = {a.lower(): a for a in allowed}
            if value.lower() in lowered:
                close = [lowered[value.lower()]]
        if close:
            hint = f" Did you mean {close[0]!r}?"
    choices = "{" + ", ".join(repr(a) for a in allowed) + "}"
    raise ConfigError(f"Expected `{name}` to be one of {choices}. Received: {name}={value!r}."
                      f"{hint}")


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    minimum_inclusive: bool = True,
    integer: bool = False,
) -> float | int:
    """Returns ``value`` if it is a finite real number inside the given bounds.

    Args:
      name: the argument's name, used in the message.
      value: what the caller passed.
      minimum: the smallest allowed value, or ``None`` for no lower bound.
      maximum: the largest allowed value, or ``None`` for no upper bound.
      minimum_inclusive: whether ``minimum`` itself is allowed.
      integer: require an integer (``bool`` is refused).

    Returns:
      ``value`` unchanged.

    Raises:
      ConfigTypeError: ``value`` is not a number (or not an integer when ``integer`` is set).
      ConfigError: ``value`` is not finite or lies outside the bounds.
    """
    kind = "an integer" if integer else "a number"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        import numpy as np

        is_number = is_number or (isinstance(value, np.generic) and np.isscalar(value)
                                  and np.issubdtype(type(value), np.number))
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    if not is_number or (integer and int(value) != value):
        raise ConfigTypeError(f"Expected `{name}` to be {kind}. Received: {name}={value!r} "
                              f"of type {type(value).__name__}.")
    if not math.isfinite(float(value)):
        raise ConfigError(f"Expected `{name}` to be a finite {kind[2:]}. "
                          f"Received: {name}={value!r}.")
    if minimum is not None:
        too_small = value < minimum if minimum_inclusive else value <= minimum
        if too_small:
            relation = ">=" if minimum_inclusive else ">"
            raise ConfigError(f"Expected `{name}` {relation} {minimum}. "
                              f"Received: {name}={value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"Expected `{name}` <= {maximum}. Received: {name}={value!r}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Returns ``value`` if it is a ``bool``; raises ``ConfigTypeError`` otherwise."""
    if not isinstance(value, bool):
        raise ConfigTypeError(f"Expected `{name}` to be True or False. Received: {name}={value!r}.")
    return value


def closest_key_hint(key: str, allowed: Iterable[str]) -> str:
    """Returns `` Did you mean 'x'?`` for the closest allowed key, or an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_file(name: str, path: Any, description: str) -> None:
    """Raises unless ``path`` is an existing file (not a folder).

    Args:
      name: the argument or flag, used in the message (e.g. ``"--model"``).
      path: what the caller passed.
      description: what the file should be, e.g. ``"a .keras model file"``.

    Raises:
      UserFileNotFoundError: nothing exists at ``path`` (a ``FileNotFoundError``).
      UserIsADirectoryError: ``path`` is a folder (an ``IsADirectoryError``).
    """
    import os

    if os.path.isdir(path):
        raise UserIsADirectoryError(f"Expected `{name}` to be {description}. Received: "
                                    f"{str(path)!r}, which is a folder.")
    if not os.path.isfile(path):
        raise UserFileNotFoundError(f"Expected `{name}` to be {description}. Received: "
                                    f"{str(path)!r}, which does not exist.")
