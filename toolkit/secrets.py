"""Secret values that cannot leak by accident.

``Secret`` masks itself in ``str``/``repr``/``format``; the only way to the value is ``reveal()``, which
transports call at the last moment. ``redact`` scrubs known secret values out of free text (exception
messages from third-party libraries, host output) before it is stored or shown.
"""

from __future__ import annotations

import threading
from typing import Any

MASK = "********"

_known_values: set[str] = set()
_known_lock = threading.Lock()


class Secret:
    """A credential value. Equality compares values; every textual form is masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            with _known_lock:
                _known_values.add(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # never pickle a secret into a file
        raise TypeError("Secret values cannot be pickled")


def has_known_secrets() -> bool:
    """Whether this process has seen any secret value (nothing to look for otherwise)."""
    with _known_lock:
        return bool(_known_values)


def contains_known_secret(data: str | bytes) -> bool:
    """Whether ``data`` holds a secret value this process has seen; bytes are searched for the value
    encoded as UTF-8 and as UTF-16LE (the encoding of Windows files such as secedit exports)."""
    with _known_lock:
        values = list(_known_values)
    if isinstance(data, str):
        return any(value in data for value in values)
    return any(value.encode("utf-8") in data or value.encode("utf-16-le") in data for value in values)


def redact(text: str) -> str:
    """Replace every secret value this process has seen with the mask."""
    with _known_lock:
        values = sorted(_known_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
