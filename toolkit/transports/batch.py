"""Several steps of one host in one WinRM pipeline: the lines ``_step_batch.ps1`` writes, read back.

Every PSRP pipeline costs about 10 KB of WS-Management traffic (the Command with its CreatePipeline, the
Receive polls, the sealing), more than most collectors' output, so a host whose steps each took a
pipeline spent most of its bytes on envelopes (issue 17). The batch function runs the steps the runner
hands over in order; each step writes one line per output object, as the collector writes it, and one
line when it ends::

    #iisfleet-batch/1 out <index> <object>
    #iisfleet-batch/1 end <index> <ok|failed> <milliseconds> [<error> ...]

``<object>`` is base64 of gzip of one output object's text (the step's ``stdout`` is its objects joined by
LF, as a pipeline of its own would have returned them), each ``<error>`` base64 of one error message. The
next step begins as the end line goes out, so no line of its own says so (a line alone would cost a Receive
of its own); objects go out as they come, so a step stopped at its timeout keeps the parts it finished.
The host is untrusted: a line that is not one of these, or names a step out of range or already ended,
is ignored; base64 and gzip are checked; a step's inflated output is capped like any other script output
(a gzip bomb stops at the cap and fails its step).
Protocol: docs/protocol/step-batch.md.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any

from toolkit.errors import TransportError
from toolkit.models import ScriptOutput

MARKER = "#iisfleet-batch/1"


@dataclass(frozen=True)
class BatchCall:
    """One step for a batch: the collector's wrapper text, its bound parameters and its own time limit."""

    script: str
    parameters: dict[str, Any]
    timeout: float


#: What a batch hands back per step: its output, the failure that ended it, or None when it never ran
#: (the caller runs those on their own).
BatchResult = ScriptOutput | TransportError | None


class BatchReader:
    """Reads a batch pipeline's lines for ``steps`` steps; each step's result is decided once."""

    def __init__(self, steps: int, *, max_chars: int, host: str) -> None:
        self.max_chars, self.host = max_chars, host
        self._parts: list[list[str]] = [[] for _ in range(steps)]
        self._sizes = [0] * steps
        self.results: list[BatchResult] = [None] * steps

    def feed(self, line: str) -> tuple[int, BatchResult] | None:
        """One output object of the batch; ``(index, result)`` when it decided a step's result (its end
        line, or output past the cap), None otherwise (a part kept, or a line ignored)."""
        if not line.startswith(MARKER + " "):
            return None
        fields = line[len(MARKER) + 1:].split(" ")
        try:
            index = int(fields[1])
        except (IndexError, ValueError):
            return None
        if not 0 <= index < len(self.results) or self.results[index] is not None:
            return None
        try:
            if fields[0] == "out" and len(fields) == 3:
                text = _unpack(fields[2], self.max_chars - self._sizes[index])
                self._parts[index].append(text)
                self._sizes[index] += len(text)
                return None
            if fields[0] != "end" or len(fields) < 4 or fields[2] not in ("ok", "failed") or not fields[3].isdigit():
                return None
            errors = tuple(base64.b64decode(e, validate=True).decode("utf-8", "replace")[:4000] for e in fields[4:])
        except _OverCap:
            self.results[index] = TransportError(
                f"a batched step sent more than {self.max_chars} characters of output", host=self.host,
                category="protocol", explanation="output beyond the controller's cap was refused: the collector's "
                "own caps did not hold")
            return index, self.results[index]
        except (binascii.Error, ValueError, zlib.error, EOFError):
            return None
        self.results[index] = ScriptOutput(stdout=self.partial(index), errors=errors, had_errors=fields[2] == "failed",
                                           duration_s=int(fields[3]) / 1000.0)
        return index, self.results[index]

    def partial(self, index: int) -> str:
        """The output objects step ``index`` had written so far, joined as its ``stdout`` would be."""
        return "\n".join(self._parts[index])


class _OverCap(Exception):
    pass


def _unpack(encoded: str, max_chars: int) -> str:
    """gzip+base64 to text; ``_OverCap`` past ``max_chars`` bytes of inflated output (checked while
    inflating, so a gzip bomb never fills memory)."""
    inflater = zlib.decompressobj(wbits=31)
    data = inflater.decompress(base64.b64decode(encoded, validate=True), max(0, max_chars) + 1)
    if len(data) > max_chars or inflater.unconsumed_tail:
        raise _OverCap()
    if not inflater.eof:
        raise ValueError("truncated gzip")
    return data.decode("utf-8", "replace")
