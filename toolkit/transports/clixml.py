"""Decode PowerShell CLIXML (``#< CLIXML`` on stderr) into readable error text.

Windows PowerShell serialises its error and progress streams as CLIXML when stderr is redirected. The
text is host output, hence untrusted: it is parsed with defusedxml (no DTDs, no entities), capped, and
only ``<S S="Error">`` strings are kept, with the ``_xHHHH_`` escapes undone.
"""

from __future__ import annotations

import re

from defusedxml import ElementTree as SafeET

MARKER = "#< CLIXML"
#: Largest stderr we parse; beyond that we keep the head as plain text.
MAX_CLIXML_CHARS = 1024 * 1024
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def decode_stderr(stderr: str) -> list[str]:
    """Return the error messages in ``stderr`` (CLIXML blocks decoded, plain text kept as is)."""
    text = stderr[:MAX_CLIXML_CHARS]
    if MARKER not in text:
        plain = text.strip()
        return [plain] if plain else []
    messages: list[str] = []
    for chunk in text.split(MARKER):
        chunk = chunk.strip()
        if not chunk:
            continue
        if not chunk.startswith("<"):
            messages.append(chunk)
            continue
        try:
            root = SafeET.fromstring(chunk)
        except Exception:  # malformed or hostile XML: keep it as text rather than fail the step
            messages.append(chunk[:2000])
            continue
        current: list[str] = []
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == "S" and element.get("S") == "Error" and element.text:
                current.append(_unescape(element.text))
        # PowerShell splits one error over several <S S="Error"> lines; join them into one message.
        joined = "".join(current).strip()
        if joined:
            messages.append(" ".join(joined.split()))
    return messages
