"""The ``Transport`` protocol every way of reaching a host implements.

A transport owns one session to one host. The runner drives it from one thread at a time:
``open()`` once, ``run_script()`` once per collector, ``close()`` at the end. The one call another
thread may make is ``cancel()`` (optional): the running script is stopped on the host within a few
seconds and ``run_script`` raises ``stopped_on_request``; later calls fail the same way at once. Every failure leaves a
transport as a ``toolkit.errors.TransportError`` or ``CollectorError`` carrying a category and a
one-line explanation (see ``toolkit.transports.errors``); nothing else escapes.

Optional: ``plan(collector_ids)``, which the runner calls (only on a transport that has it) before the first
step, with the id of every collector it may run on this host (a superset: steps a ``when:`` or the budget
will skip are in it). A transport that compiles the C# core per session then loads only the core files
those collectors need (``toolkit.transports.core``). It is a hint, never a limit: a script outside the
plan still runs, in a new session if need be. Without it the whole core is loaded.

Optional: ``can_batch(scripts)`` and ``run_batch(calls, on_result)`` (WinRM with session functions): several
bundled steps in one pipeline, each within its own timeout, each result handed to ``on_result`` as it
arrives; a step that got no result is run with ``run_script`` by the caller (docs/protocol/step-batch.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from toolkit.errors import TransportError
from toolkit.models import ScriptOutput

#: Largest output accepted from one script, in characters. Host output is untrusted: a runaway or
#: hostile collector must not exhaust the controller's memory. Collector caps keep real output far below.
MAX_OUTPUT_CHARS = 256 * 1024 * 1024

#: Receives a streamed step's output objects (WinRM) / lines (SSH) one at a time, as they arrive.
OutputSink = Callable[[str], None]


@runtime_checkable
class Transport(Protocol):
    """One session to one host."""

    def open(self) -> None:
        """Connect and authenticate. Raises ``TransportError`` (dns, connect, tls, auth, timeout, protocol)."""
        ...

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float,
                   on_output: OutputSink | None = None) -> ScriptOutput:
        """Run ``script`` with ``parameters`` bound as PowerShell parameters, within ``timeout`` seconds.

        ``on_output`` (a step whose output is a stream of large parts, e.g. raw files in chunks): each
        output object is handed to it as it arrives and not kept, so ``stdout`` comes back empty and a
        timeout's ``partial_stdout`` too; ``MAX_OUTPUT_CHARS`` then bounds each object, not the sum. A
        dropped connection is raised (category ``connect``) instead of running the step again from its
        start: the caller resumes it from what it received.

        Parameters travel as data (PSRP parameters or JSON on stdin), never pasted into script text.
        A script that ran but reported errors comes back as ``ScriptOutput`` with ``had_errors``/``errors``
        set; the caller decides whether that fails the step. Exceeding ``timeout`` raises a
        ``TransportError`` with category ``timeout``.
        """
        ...

    def close(self) -> None:
        """Release the session. Never raises."""
        ...


def stopped_on_request(host: str, elapsed_s: float) -> TransportError:
    """What ``run_script`` raises once another thread called the transport's ``cancel()`` (an operator
    stopping the run): the remote script has been stopped, its output is discarded."""
    return TransportError(f"stopped on request after {elapsed_s:.0f} s (the run was interrupted)", host=host,
                          category="timeout", explanation="the operator stopped the run; nothing is wrong "
                          "with the host")
