"""Transfer faults of a simulated host (host.yml ``faults: transfer``): what a real network does to a long,
streamed answer such as Get-IisRawArtefact's chunks. Each entry applies to one run of the collector on
that host, in order (the first entry to the first run, ...); runs after the last entry are clean, so a
test can interrupt a transfer and then watch it resume.

* ``drop``: the first ``after_parts`` output objects are sent, then the connection is cut (a RST);
* ``stall``: the first ``after_parts`` output objects are sent, then the script hangs (until the client's
  step timeout or Ctrl-C stops it);
* ``corrupt``: every object is sent; in the first part from ``after_parts`` on that carries a chunk, one bit
  of the chunk's raw bytes is flipped on the way (its hashes, computed on the host, no longer match).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from typing import Any

from toolkit.lab.backend import ScriptAnswer

TRANSFER_MODES = ("drop", "stall", "corrupt")
#: How long a stalled script hangs: longer than any step a test gives it.
STALL_S = 3600.0


class TransferFaults:
    """Counts the runs of each collector on one host and applies that run's fault."""

    def __init__(self, faults: tuple[Any, ...]) -> None:
        self._faults = faults
        self._runs: dict[str, int] = {}
        self._lock = threading.Lock()

    def apply(self, cid: str, answer: ScriptAnswer) -> ScriptAnswer:
        planned = [f for f in self._faults if f.collector in ("*", cid)]
        if not planned:
            return answer
        with self._lock:
            run = self._runs.get(cid, 0)
            self._runs[cid] = run + 1
        if run >= len(planned):
            return answer
        fault = planned[run]
        cut = max(0, fault.after_parts)
        if fault.mode == "drop":
            return ScriptAnswer(output=answer.output[:cut], delay_s=answer.delay_s, drop_connection=True)
        if fault.mode == "stall":
            return ScriptAnswer(output=answer.output[:cut], delay_s=answer.delay_s, stall_s=STALL_S)
        output = list(answer.output)
        carrying = [i for i, text in enumerate(output) if i >= cut and '"chunks":[{' in text.replace(" ", "")[:4096]]
        if carrying:
            output[carrying[0]] = _flip_a_byte(output[carrying[0]])
        return ScriptAnswer(output=output, delay_s=answer.delay_s, non_terminating_errors=answer.non_terminating_errors)


def _flip_a_byte(text: str) -> str:
    """One part with one bit of its carried bytes flipped, every hash left as the host computed it."""
    part = json.loads(text)
    for chunk in (part.get("data") or {}).get("chunks") or []:
        blob = chunk["content"]
        raw = bytearray(gzip.decompress(base64.b64decode(blob["content"])) if blob["encoding"] == "gzip+base64"
                        else base64.b64decode(blob["content"]))
        if raw:
            raw[len(raw) // 2] ^= 0x01
        encoded = gzip.compress(bytes(raw), mtime=0) if blob["encoding"] == "gzip+base64" else bytes(raw)
        blob["content"] = base64.b64encode(encoded).decode("ascii")
    return json.dumps(part, separators=(",", ":"), ensure_ascii=False)
