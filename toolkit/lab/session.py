"""One PowerShell session on a simulated host: a WinRM runspace pool, or one SSH bootstrap process.

A real host compiles the collectors' C# core once per session (``ps_scripts/_core_loader.ps1``), and a
wrapper that calls the core in a session where it was never loaded finds no type: its environment probe
answers with an ``environment`` error instead of data. The lab keeps the same state per session, so a
transport that forgets the loader (or loads it in the wrong place) fails here as it would on Windows:

* the loader, recognised by its marker and its exact bundled text, is answered with the loader's status
  line; its ``Source``/``Version`` parameters must be the bundled core, or the subset of its files a
  transport planned (``toolkit.targetcore.closure``), exactly as ``core_source(files)`` assembles it
  (anything else is refused loudly, like a changed collector); a second loader with another version in the
  same session gets the real loader's "another version is already loaded" error;
* a script needing a core file the session's subset lacks fails as the type or method lookup would on
  Windows (a terminating error);
* the loader's ``CompressedFunctions`` (WinRM) must unpack to exactly the bundled session functions
  (``toolkit.collectors.session_functions_text``); in FullLanguage they are then defined in the session,
  and a call of one of them (``add_cmdlet``) is answered as its wrapper would be, in this session only;
* a script that calls the core (``toolkit.collectors.uses_core``) in a session without it gets the
  envelope the wrapper's probe writes;
* the session's language mode (its WinRM endpoint's, ``toolkit.lab.winrm.endpoints``; over SSH the host's
  default endpoint's) applies: in ConstrainedLanguage the loader reports that Add-Type is not allowed and
  the wrappers' probes answer with the structured environment error (NoLanguage never gets this far: the
  endpoint refuses scripts before a session sees them).

Everything else goes to the host's backend unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toolkit.lab.backend import HostBackend, ScriptAnswer
from toolkit.lab.model.catalog import find_marker, normalise_text
from toolkit.lab.winrm.endpoints import environment_answer

if TYPE_CHECKING:
    from toolkit.targetcore import CoreSource

LOADER_ID = "_core_loader"
COLLECTOR_SCHEMA = "iisfleet.collector/1"

#: What the wrappers' Test-CollectorEnvironment writes when the core is missing (a static test keeps the
#: wrappers' text identical); the target names the reason, as for the language-mode refusal.
CORE_NOT_LOADED = ("The iisfleet C# core is not loaded in this session (the transport's loader did not run or "
                   "failed), so this collector cannot run.")
CORE_NOT_LOADED_TARGET = "core-not-loaded"
#: The lab's terminating error for a script that needs core files the session's subset lacks (on Windows:
#: "Unable to find type [IisFleet.Target.X]" or "... does not contain a method named ...").
CORE_LACKS = "A type or method this script calls is not in the iisfleet core loaded in this session; it lacks"


def loader_language_mode_message(mode: str) -> str:
    return (f"PowerShell runs in {mode} mode on this host, where Add-Type is not allowed: the collectors cannot "
            "compile their C# core. Connect to an endpoint in FullLanguage mode.")


class LabSession:
    """Session state for one runspace pool / bootstrap process; answers scripts through ``backend``."""

    def __init__(self, backend: HostBackend, *, host_name: str, language_mode: str = "FullLanguage",
                 ps_version: str = "5.1.17763.1", clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.host_name = host_name
        self.language_mode = language_mode
        self.ps_version = ps_version
        self._clock = clock
        self._lock = threading.Lock()
        #: the core version loaded in this session (None: never loaded), and the core files it holds
        self.core_version: str | None = None
        self.core_files: frozenset[str] = frozenset()
        self.compiles = 0  # how often Add-Type ran in this session (must stay at most 1)
        self.loader_calls = 0
        #: (collector id, UseLocalScope flag) of each WinRM pipeline, as the client sent it
        self.scopes: list[tuple[str, bool | None]] = []
        #: session function name (lower case) → the wrapper text it runs, once the loader defined them
        self.functions: dict[str, str] = {}
        self.function_calls = 0

    @property
    def host(self) -> Any:
        """The host model behind this session (what code that inspects a backend's host reads)."""
        return getattr(self.backend, "host", None)

    def record_scope(self, script: str, use_local_scope: bool | None) -> None:
        marker = find_marker(script)
        self.scopes.append((marker[0] if marker else "", use_local_scope))

    def defined_function(self, command: str) -> str | None:
        """The wrapper text of session function ``command`` when the loader defined it here, else None."""
        return self.functions.get(command.strip().lower())

    def answer(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        from toolkit.collectors import STEP_BATCH_FUNCTION, uses_core
        from toolkit.targetcore.closure import files_for_script

        if self.functions and script.strip().lower() == STEP_BATCH_FUNCTION.lower():
            from toolkit.lab.batch import batch_answer

            return batch_answer(parameters.get("Step"), self.answer)()
        wrapper = self.defined_function(script)
        if wrapper is not None:  # a call of a session function: its body is the bundled wrapper
            self.function_calls += 1
            script = wrapper
        marker = find_marker(script)
        if marker is not None and marker[0] == LOADER_ID:
            return self._load(script, parameters)
        if uses_core(script):
            if self.language_mode == "ConstrainedLanguage":
                return environment_answer(script, "ConstrainedLanguage", self._computer_name())
            if self.core_version is None:
                return ScriptAnswer(output=[self._environment_envelope(script, CORE_NOT_LOADED)])
            missing = files_for_script(script) - self.core_files
            if missing:
                return ScriptAnswer(error=f"{CORE_LACKS} {', '.join(sorted(missing))}")
        return self.backend.answer(script, parameters)

    def _computer_name(self) -> str:
        return getattr(self.host, "computer_name", None) or self.host_name.upper()

    def load_core_for_module(self) -> None:
        """The exported JEA module's first call compiles the core in the session (no loader script there)."""
        from toolkit.targetcore import core_source

        with self._lock:
            if self.core_version is None:
                core = core_source()
                self.core_version, self.core_files = core.version, frozenset(core.files)
                self.compiles += 1

    def _load(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        from toolkit.collectors import core_loader

        if normalise_text(script) != normalise_text(core_loader()):
            return ScriptAnswer(error="unknown collector _core_loader: the script text differs from the bundled "
                                      "loader; the lab refuses to answer it")
        core = bundled_core_subset(unpacked_core_text(parameters))
        version = str(parameters.get("Version") or "")
        status: dict[str, Any] = {"schema": "iisfleet.core-loader/1", "version": version, "loaded": False,
                                  "compiled": False, "compile_ms": 0, "ps_version": self.ps_version,
                                  "language_mode": self.language_mode, "error": None}
        with self._lock:
            self.loader_calls += 1
            if self.language_mode != "FullLanguage":
                status["error"] = {"category": "environment",
                                   "message": loader_language_mode_message(self.language_mode)}
            elif core is None or version != core.version:
                return ScriptAnswer(error="the lab compiles only the bundled core (or a subset of its files): the "
                                          "loader was given another source or version")
            elif "CompressedFunctions" in parameters and unpacked_functions(parameters) is None:
                return ScriptAnswer(error="the lab defines only the bundled session functions: the loader was given "
                                          "other CompressedFunctions")
            else:
                if self.core_version is not None and self.core_version != version:
                    status["error"] = {"category": "environment", "message": another_version_message(self.core_version)}
                elif self.core_version is not None:
                    status["loaded"] = True  # already there: Add-Type is not run again
                else:
                    self.core_version, self.core_files = version, frozenset(core.files)
                    self.compiles += 1
                    status["loaded"] = status["compiled"] = True
                if "CompressedFunctions" in parameters:
                    self.functions = unpacked_functions(parameters) or {}
                    status["functions"] = True
        status.setdefault("functions", False)
        line = json.dumps(status, separators=(",", ":"))
        if status["functions"] and parameters.get("Step"):  # the first steps ride with the loader
            from toolkit.lab.batch import batch_answer

            return ScriptAnswer(output=[line], then=batch_answer(parameters.get("Step"), self.answer))
        return ScriptAnswer(output=[line])

    def _environment_envelope(self, script: str, message: str) -> str:
        marker = find_marker(script)
        collector, version = marker if marker is not None else ("unknown", 0)
        now = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        envelope = {"schema": COLLECTOR_SCHEMA, "collector": collector, "version": version,
                    "host": self._computer_name(), "time_utc": now, "data": {},
                    "errors": [{"probe": "environment", "target": CORE_NOT_LOADED_TARGET, "category": "environment",
                                "message": message}]}
        return json.dumps(envelope, separators=(",", ":"))


def unpacked_functions(parameters: dict[str, Any]) -> dict[str, str] | None:
    """Session function name (lower case) → wrapper text, when ``CompressedFunctions`` unpacks to exactly the
    bundled definitions (what the real loader would define); None for anything else."""
    from toolkit.collectors import decompress_core_text, load_catalog, session_function_name, session_functions_text

    encoded = parameters.get("CompressedFunctions")
    try:
        if not isinstance(encoded, str) or decompress_core_text(encoded) != session_functions_text():
            return None
    except (ValueError, OSError, EOFError):
        return None
    return {session_function_name(cid).lower(): collector.script for cid, collector in load_catalog().items()}


def another_version_message(loaded: str) -> str:
    """What ``_core_loader.ps1`` says when a session already holds another version of the core."""
    return (f"Another version ({loaded}) of the iisfleet core is already loaded in this session; open a new "
            "session.")


def bundled_core_subset(text: str | None) -> CoreSource | None:
    """The bundled core, or the subset of its files, that ``text`` is exactly (its ``#line 1 "<file>"``
    directives name the files); None for any other text."""
    from toolkit.targetcore import core_source

    if text is None:
        return None
    try:
        subset = core_source(re.findall(r'^#line 1 "([^"\n]+)"$', text, re.MULTILINE))
    except ValueError:  # a file the core does not have
        return None
    return subset if subset.text == text else None


def unpacked_core_text(parameters: dict[str, Any]) -> str | None:
    """The C# text the loader's ``CompressedSource`` decompresses to, as the real loader's GZipStream
    would; None when it is missing or not gzip+base64 (a real host would fail there too)."""
    from toolkit.collectors import decompress_core_text

    encoded = parameters.get("CompressedSource")
    if not isinstance(encoded, str):
        return None
    try:
        return decompress_core_text(encoded)
    except (ValueError, OSError, EOFError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
