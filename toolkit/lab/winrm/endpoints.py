"""How a simulated endpoint treats a pipeline, by its language mode, as Windows does.

* FullLanguage: scripts run (the host model answers the collector). When the session is not elevated,
  collectors that need an elevated token answer with the target side's structured ``environment`` error,
  and so does the Security-log collector unless the session carries Event Log Readers.
* ConstrainedLanguage (AppLocker/WDAC enforcing): the collectors cannot compile or call .NET code; the
  target side's probe answers every collector with its structured ``environment`` error.
* NoLanguage (the iisfleet JEA endpoint): a script gets Windows' own ``ScriptsNotAllowed`` parse error; a
  function of the exported role capability runs its collector; ``Get-Command`` (visible in every
  RestrictedRemoteServer session) lists the visible functions it is asked for; any other command is
  ``CommandNotFoundException``. The visible functions are read back from the ``.psrc`` that
  ``iisfleet jea export`` generates for the same catalogue, so the lab proves the transport calls exactly
  the functions an admin would register.

The structured environment error (docs/contracts.md): an envelope whose ``data`` is empty and whose
``errors`` holds one item ``{"probe": "environment", "category": "environment", "target": <reason>}`` with
reason ``ConstrainedLanguage``, ``NoLanguage``, ``not-elevated`` or ``no-security-log``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

from toolkit.lab.backend import Endpoint, HostBackend, ScriptAnswer

#: Windows' own texts (en-US) for the errors a NoLanguage runspace raises.
SCRIPTS_NOT_ALLOWED = ("The syntax is not supported by this runspace. This can occur if the runspace is in "
                       "no-language mode.")
COMMAND_NOT_FOUND = ("The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                     "operable program. Check the spelling of the name, or if a path was included, verify that "
                     "the path is correct and try again.")

ENVIRONMENT_MESSAGES = {
    "ConstrainedLanguage": "PowerShell runs in ConstrainedLanguage mode on this host (application control "
                           "policy): the collector cannot compile or call .NET code",
    "not-elevated": "the session's administrator token is filtered (not elevated): this collector reads files or "
                    "logs only Administrators may read",
    "no-security-log": "the session may not read the Security event log (neither elevated nor in Event Log Readers)",
}


@functools.cache
def jea_functions() -> dict[str, str]:
    """Visible function name (lower case) → collector id, from the role capability the export writes."""
    from toolkit.collectors import load_catalog
    from toolkit.jea import function_name
    from toolkit.jea.export import ExportOptions, build_export, visible_functions

    catalog = load_catalog()
    by_function = {function_name(cid).lower(): cid for cid in catalog}
    export = build_export(ExportOptions(group="LAB\\iisfleet-collectors"), catalog)
    return {name.lower(): by_function[name.lower()] for name in visible_functions(export)
            if name.lower() in by_function}


def _needs_elevation(collector_id: str) -> bool:
    from toolkit.jea.rights import RIGHTS

    return collector_id in RIGHTS["elevated"].collectors


def _reads_security_log(collector_id: str) -> bool:
    from toolkit.jea.rights import RIGHTS

    return collector_id in RIGHTS["security-log"].collectors


def environment_answer(script: str, reason: str, host: str) -> ScriptAnswer:
    """The structured environment error the target side gives for collector ``script``."""
    from toolkit.collectors import parse_marker

    marker = parse_marker(script)
    if marker is None:
        return ScriptAnswer(error="Cannot invoke method. Method invocation is supported only on core types in this "
                                  "language mode.", error_id="MethodInvocationNotSupportedInConstrainedLanguage",
                            error_category="InvalidOperation")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope = {"schema": "iisfleet.collector/1", "collector": marker[0], "version": marker[1], "host": host,
                "time_utc": now, "data": {},
                "errors": [{"probe": "environment", "target": reason, "category": "environment",
                            "message": ENVIRONMENT_MESSAGES[reason]}]}
    return ScriptAnswer(output=[json.dumps(envelope, separators=(",", ":"))])


def session_probe_answer(ps_version: str, endpoint: Endpoint) -> ScriptAnswer:
    """What ``_session_probe.ps1`` reports in a session on ``endpoint`` (see the script)."""
    full = endpoint.language == "FullLanguage"
    groups = (["Administrators"] if endpoint.elevated else []) + list(endpoint.groups)
    probe = {"schema": "iisfleet.session/1", "ps_version": ps_version, "language_mode": endpoint.language,
             "user": "CONTOSO\\iisfleet-lab" if full else None, "elevated": endpoint.elevated if full else None,
             "groups": groups if full else [],
             "inetsrv_config_readable": endpoint.elevated if full else None,
             "security_log_readable": endpoint.reads_security_log if full else None}
    return ScriptAnswer(output=[json.dumps(probe, separators=(",", ":"))])


class EndpointSession:
    """The endpoint a PowerShell shell was opened on, and the host it belongs to."""

    def __init__(self, endpoint: Endpoint, host: str) -> None:
        self.endpoint = endpoint
        self.host = host
        self.calls: list[str] = []  # commands or collectors run, for the tests

    def route(self, metadata: Any, backend: HostBackend) -> Callable[[], ScriptAnswer]:
        from toolkit.lab.winrm.shells import extract_script

        commands = list(getattr(metadata, "commands", []) or [])
        if self.endpoint.language == "NoLanguage":
            if any(c.is_script for c in commands):
                self.calls.append("<script>")
                answer = ScriptAnswer(error=SCRIPTS_NOT_ALLOWED, error_id="ScriptsNotAllowed",
                                      error_category="ParserError",
                                      error_type="System.Management.Automation.ParseException")
                return lambda: answer
            return self._command(commands, metadata, backend)
        try:
            script, parameters, _ = extract_script(metadata)
        except ValueError as exc:
            failure = ScriptAnswer(error=str(exc))
            return lambda: failure
        from toolkit.collectors import STEP_BATCH_FUNCTION, STEP_BATCH_ID

        if script.strip().lower() == STEP_BATCH_FUNCTION.lower() and getattr(backend, "functions", None):
            from toolkit.lab.batch import batch_answer

            self.calls.append(STEP_BATCH_ID)  # defined by the loader with the collectors' functions
            return batch_answer(parameters.get("Step"), lambda name, given: self._judged(name, given, backend)())
        return self._judged(script, parameters, backend)

    def _judged(self, script: str, parameters: dict[str, Any], backend: HostBackend) -> Callable[[], ScriptAnswer]:
        """The answer to one script or session function call, after the endpoint's own refusals."""
        from toolkit.collectors import parse_marker

        # A call of a function the core loader defined in this session is judged as the wrapper it runs.
        defined = getattr(backend, "defined_function", None)
        wrapper = (defined(script) if defined is not None else None) or script
        marker = parse_marker(wrapper)
        self.calls.append(marker[0] if marker else "<script>")
        if marker is not None and marker[0] == "_session_probe":
            host_model = getattr(backend, "host", None)
            probe = session_probe_answer(getattr(host_model, "ps_version", "5.1.20348.2849"), self.endpoint)
            return lambda: probe
        if self.endpoint.language == "ConstrainedLanguage" and not (marker and marker[0] == "_core_loader"):
            answer = environment_answer(wrapper, "ConstrainedLanguage", self.host)
            return lambda: answer  # the core loader instead reports the mode itself (toolkit.lab.session)
        if not self.endpoint.elevated and marker is not None and _needs_elevation(marker[0]):
            answer = environment_answer(wrapper, "not-elevated", self.host)
            return lambda: answer
        if not self.endpoint.reads_security_log and marker is not None and _reads_security_log(marker[0]):
            answer = environment_answer(wrapper, "no-security-log", self.host)
            return lambda: answer
        return lambda: backend.answer(script, parameters)

    def _command(self, commands: list[Any], metadata: Any, backend: HostBackend) -> Callable[[], ScriptAnswer]:
        from toolkit.lab.winrm.shells import extract_script

        name = str(commands[0].command_text) if commands else ""
        _, parameters, _ = extract_script(metadata)
        self.calls.append(name)
        visible = jea_functions() if self.endpoint.jea else {}
        short = name.split("\\")[-1].lower()
        qualified_ok = "\\" not in name or name.split("\\")[0].lower() == "iisfleet"
        if short == "get-command":
            wanted = str(parameters.get("Name") or parameters.get("0") or "").lower()
            found = [n for n in visible if n == wanted or not wanted]
            listing = ScriptAnswer(output=[_function_display(n) for n in found])
            return lambda: listing
        if short in visible and qualified_ok:
            from toolkit.lab.model.catalog import load_bundled

            bundled = load_bundled()[visible[short]]
            return lambda: _module_function(backend, bundled.script, parameters)
        missing = ScriptAnswer(error=COMMAND_NOT_FOUND.format(name=name), error_id="CommandNotFoundException",
                               error_category="ObjectNotFound",
                               error_type="System.Management.Automation.CommandNotFoundException")
        return lambda: missing


def _module_function(backend: HostBackend, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
    """A function of the exported module: the module compiles the C# core itself on its first call
    (toolkit/jea/export.py), since no loader script can be sent to a NoLanguage endpoint."""
    load = getattr(backend, "load_core_for_module", None)
    if load is not None:
        load()
    return backend.answer(script, parameters)


def _function_display(lower_name: str) -> str:
    from toolkit.collectors import load_catalog
    from toolkit.jea import function_name

    for cid in load_catalog():
        if function_name(cid).lower() == lower_name:
            return function_name(cid)
    return lower_name
