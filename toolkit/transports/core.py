"""Loading the collectors' C# core into a host session, shared by the WinRM and SSH transports.

The core (``ps_scripts/core``) is compiled on the host with ``Add-Type`` by ``ps_scripts/_core_loader.ps1``,
once per session: per runspace pool over WinRM, per bootstrap process (one per SSH connection) over SSH.
The transport runs the loader lazily, before the first script that calls the core (``uses_core``), with
the source and its version as parameters (data, never script text). The loader never fails the step on
its own: when it reports a problem (language mode, old PowerShell, compiler error) the session remembers
it, and each collector's environment probe reports it in its envelope. Only a loader whose output cannot
be read is a transport failure.

Only the part of the core a session needs travels when the runner told the transport which collectors the
host's playbook may run (``plan``, see ``toolkit.transports.base``): the loader then gets the closure of
those collectors' core files (``toolkit.targetcore.closure``) together with the current script's, as its
own version. A type Add-Type loaded stays in its process, and the loader refuses a second, different
version there; so a later script needing a file that subset lacks (a step the plan did not name) gets a
new session (runspace pool / bootstrap process) where the whole core is loaded, and the plan is dropped
for the rest of the transport's life: at most one extra session, never a missing type. Without a plan
(``hosts check``, ad-hoc scripts) the whole core is loaded, as before.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from toolkit.errors import TransportError
from toolkit.models import ScriptOutput

LOADER_SCHEMA = "iisfleet.core-loader/1"

@dataclass(frozen=True)
class CoreStatus:
    """What the loader reported for one session."""

    loaded: bool
    compiled: bool  # False when the same version was already loaded (nothing compiled this time)
    compile_ms: int
    version: str
    ps_version: str
    language_mode: str
    error: str | None
    #: True when the loader also defined the collectors' session functions (WinRM, FullLanguage)
    functions: bool = False


def parse_loader_output(output: ScriptOutput, *, host: str) -> CoreStatus:
    """The loader's one JSON line; TransportError (protocol) when it is anything else."""
    text = output.stdout.lstrip("\ufeff").strip()
    if output.had_errors and not text:
        detail = "; ".join(" ".join(e.split()) for e in output.errors[:2])[:400] or "no message"
        raise TransportError(f"the core loader failed on the host: {detail}", host=host, category="protocol",
                             explanation="the session could not run the loader script; run `iisfleet hosts check`")
    try:
        document: Any = json.loads(text)
        if not isinstance(document, dict) or document.get("schema") != LOADER_SCHEMA:
            raise ValueError("not a loader status")
        error = document.get("error")
        return CoreStatus(loaded=document.get("loaded") is True, compiled=document.get("compiled") is True,
                          compile_ms=int(document.get("compile_ms") or 0), version=str(document.get("version") or ""),
                          ps_version=str(document.get("ps_version") or ""),
                          language_mode=str(document.get("language_mode") or ""),
                          error=str(error.get("message") or "the loader failed") if isinstance(error, dict) else None,
                          functions=document.get("functions") is True)
    except (ValueError, TypeError) as exc:
        raise TransportError(f"the core loader answered something unreadable ({exc}): {text[:120]!r}", host=host,
                             category="protocol", explanation="something on the host wrote to the output stream of "
                             "the session (a profile script?) or cut it short") from None


def core_files_to_load(planned: Collection[str] | None, script: str) -> frozenset[str] | None:
    """The core files a session's loader compiles before ``script``: None (the whole core) without a
    plan; else those the planned collectors and ``script`` itself need."""
    from toolkit.targetcore.closure import files_for_collectors, files_for_script

    if planned is None:
        return None
    return files_for_collectors(planned) | files_for_script(script)


def core_lacks(status: CoreStatus | None, loaded_files: frozenset[str] | None, script: str) -> bool:
    """Whether the core a session loaded (``loaded_files``; None = all of it) lacks a file ``script`` needs,
    so the script must go to a new session. False when nothing is loaded yet, or the loader failed
    (a new session would fail the same way; the wrapper's probe reports it)."""
    from toolkit.targetcore.closure import files_for_script

    if status is None or not status.loaded or loaded_files is None:
        return False
    return not files_for_script(script) <= loaded_files
