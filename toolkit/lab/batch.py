"""What ``ps_scripts/_step_batch.ps1`` does on a host, for the lab: run session functions in order and
write each step's lines as that step ends (docs/protocol/step-batch.md).

Each step is answered exactly as its own pipeline would be (``answer_step``: the endpoint's refusals,
then the session and the host model), so a batch sees the same envelopes, delays and faults. A step's
terminating error ends that step only ("failed", its message as an error), as the batch's catch does; a
step that hangs (a transfer fault's stall) hangs the batch, and the client's step timeout stops it.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from typing import Any

from toolkit.lab.backend import ScriptAnswer
from toolkit.transports.batch import MARKER


def pack(text: str) -> str:
    """base64 of gzip of UTF-8 text (.NET's GZipStream output differs in bytes, not in what it inflates to)."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"))).decode("ascii")


def step_lines(index: int, answer: ScriptAnswer) -> list[str]:
    """A step's lines: its output objects (joined by LF, 64 KB or more to a line), then its end line."""
    problems = list(answer.non_terminating_errors) + ([answer.error] if answer.error is not None else [])
    outcome = "failed" if answer.error is not None else "ok"
    lines, held = [], []
    for item in answer.output:  # held until 64 KB gathered, as the batch function does (its 5 s rule aside)
        held.append(str(item))
        if sum(len(text) for text in held) >= 65536:
            lines.append(f"{MARKER} out {index} {pack(chr(10).join(held))}")
            held = []
    if held:
        lines.append(f"{MARKER} out {index} {pack(chr(10).join(held))}")
    lines.append(" ".join([f"{MARKER} end {index} {outcome} {int(answer.delay_s * 1000)}"]
                          + [base64.b64encode(problem.encode("utf-8")).decode("ascii") for problem in problems]))
    return lines


def batch_answer(steps: Any, answer_step: Callable[[str, dict[str, Any]], ScriptAnswer]) -> Callable[[], ScriptAnswer]:
    """The batch pipeline's answer: each step's lines once that step's answer, with its delay, is done."""
    calls = [step if isinstance(step, dict) else {} for step in (steps if isinstance(steps, list) else [])]

    def part(index: int) -> ScriptAnswer:
        call = calls[index]
        parameters = call.get("Parameters")
        answer = answer_step(str(call.get("Name") or ""), parameters if isinstance(parameters, dict) else {})
        if answer.stall_s > 0 or answer.drop_connection:  # the step hangs after its parts, and the batch with it
            return ScriptAnswer(output=step_lines(index, answer)[:-1], stall_s=answer.stall_s,
                                drop_connection=answer.drop_connection, delay_s=answer.delay_s)
        following = (lambda: part(index + 1)) if index + 1 < len(calls) else None
        return ScriptAnswer(output=step_lines(index, answer), delay_s=answer.delay_s, then=following)

    return (lambda: part(0)) if calls else (lambda: ScriptAnswer())
