"""Host-supplied text made safe to show: the one place every terminal line and text report goes through.

A compromised host chooses its error messages, site names and log lines. Shown raw, an ESC sequence
rewrites the operator's terminal (title, colours, hidden text, on some terminals keystrokes), a C1
control such as U+009B is a one-byte CSI on terminals that honour 8-bit controls, and a bidi override
(U+202E) makes ``evil.exe`` read as ``exe.live``. ``display_text`` replaces each of them with a visible
``\\x1b``/``\\u202e``-style escape, so nothing is hidden and nothing is interpreted.

``scrub_surrogates`` replaces lone UTF-16 surrogates (valid in a JSON ``\\ud800`` escape, impossible to
write as UTF-8) with U+FFFD, so a host's data can always be stored.
"""

from __future__ import annotations

import re
from typing import Any

#: C0 controls (tab, newline and carriage return are handled by ``display_text``), DEL, C1 controls,
#: bidi embeddings/overrides/isolates and marks, zero-width and invisible format characters a line can
#: hide text with, the line/paragraph separators, and lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def display_text(value: Any, *, one_line: bool = True) -> str:
    """``value`` as text that cannot act on a terminal: unsafe characters shown as visible escapes.

    ``one_line`` turns tabs and line breaks into spaces (a host cannot fake extra report lines);
    otherwise they are kept.
    """
    text = "" if value is None else str(value)
    if one_line:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    else:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub(_visible, text)


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character ``display_text`` would neutralise (besides line breaks)."""
    return _UNSAFE.search(text) is not None


def scrub_surrogates(value: Any) -> Any:
    """``value`` (a JSON-shaped tree) with every lone surrogate in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [scrub_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {scrub_surrogates(key): scrub_surrogates(item) for key, item in value.items()}
    return value


__all__ = ["display_text", "has_unsafe", "scrub_surrogates"]
