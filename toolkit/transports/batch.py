"""Several steps of one host in one WinRM pipeline: the lines ``_step_batch.ps1`` writes, read back.

Every PSRP pipeline costs about 10 KB of WS-Management traffic (the Command with its CreatePipeline, the
Receive polls, the sealing), more than most collectors' output, so a host whose steps each took a
pipeline spent most of its bytes on envelopes (issue 17). The batch function runs the steps the runner
hands over in order and writes, per step::

    #iisfleet-batch/1 begin <index>
    #iisfleet-batch/1 end <index> <ok|failed> <milliseconds> <output> [<error> ...]

``<output>`` is base64 of gzip of the step's output objects joined by LF (what a pipeline of its own
would have returned as ``stdout``), each ``<error>`` base64 of one error message. The host is untrusted:
a line that is not one of these is ignored, an index out of range or repeated is ignored, and the
decompressed output is capped like any other script output (a gzip bomb stops at the cap).
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


@dataclass(frozen=True)
class BatchLine:
    index: int
    #: an end line's step: its output, or the refusal of an output over the cap
    output: ScriptOutput | TransportError | None = None


def parse_line(line: str, *, steps: int, max_chars: int, host: str) -> BatchLine | None:
    """One output object of the batch pipeline; None for anything that is not a well-formed marker line
    for a step in range. An end line whose output inflates past ``max_chars`` ends its step with a
    ``protocol`` error."""
    if not line.startswith(MARKER + " "):
        return None
    fields = line[len(MARKER) + 1:].split(" ")
    try:
        index = int(fields[1])
    except (IndexError, ValueError):
        return None
    if not 0 <= index < steps:
        return None
    if fields[0] != "end" or len(fields) < 5 or fields[2] not in ("ok", "failed") or not fields[3].isdigit():
        return None
    try:
        stdout = _unpack(fields[4], max_chars, host)
        errors = tuple(base64.b64decode(e, validate=True).decode("utf-8", "replace")[:4000] for e in fields[5:])
    except TransportError as refused:
        return BatchLine(index, refused)
    except (binascii.Error, ValueError, zlib.error, EOFError):
        return None
    failed = fields[2] == "failed"
    return BatchLine(index, ScriptOutput(stdout=stdout, errors=errors, had_errors=failed,
                                         duration_s=int(fields[3]) / 1000.0))


def _unpack(encoded: str, max_chars: int, host: str) -> str:
    """gzip+base64 to text, refusing more than ``max_chars`` bytes of decompressed output."""
    inflater = zlib.decompressobj(wbits=31)
    data = inflater.decompress(base64.b64decode(encoded, validate=True), max_chars + 1)
    if len(data) > max_chars or inflater.unconsumed_tail:
        raise TransportError(f"a batched step sent more than {max_chars} characters of output", host=host,
                             category="protocol",
                             explanation="output beyond the controller's cap was refused: the collector's own caps "
                             "did not hold")
    if not inflater.eof:
        raise ValueError("truncated gzip")
    return data.decode("utf-8", "replace")
