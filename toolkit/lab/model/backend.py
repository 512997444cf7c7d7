"""``ModelBackend``: one simulated host answering the bundled collectors from its model.

Recognition is strict: the script must carry a ``# collector-id: <Id>/<n>`` marker naming a bundled
collector, and its text must equal the bundled file (after CRLF normalisation). Anything else is a loud
terminating error, so a changed collector can never be answered from a stale model.

Time: the fleet's files were written against ``reference_time``. When the fleet asks for it, the backend
presents every timestamp moved by ``shift = clock() at load − reference_time``, so the newest traffic is
"just now" and the collectors' default 24-hour window finds it (docs/lab-fleet.md, "Time").
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.lab.backend import ScriptAnswer
from toolkit.lab.model.corehost import CoreHost, SimulatedHost, shared_core_host
from toolkit.lab.model.evtx import write_evtx
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.lab.model.appconfig import AppHostSummary, summarise
from toolkit.lab.model.catalog import BundledCollector, find_marker, normalise_text
from toolkit.lab.model.coreanswers import lab_only_parameters, with_defaults
from toolkit.lab.model.fleet import FleetModel, HostModel, iso_z, read_events
from toolkit.targetcore import MonoUnavailable
from toolkit.lab.model.hostile import hostile_envelope
from toolkit.lab.model.transfer import TransferFaults
from toolkit.lab.model.winfs import HostFiles

SCHEMA = "iisfleet.collector/1"
APPHOST_PATH = "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
CRASH_ON_AUDIT_FAIL = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\CrashOnAuditFail"
HTTP_ERROR_LOGGING_DIR = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\HTTP\\Parameters\\ErrorLoggingDir"
#: answered by the target-side C# core under Mono, not by a Python model
CORE_ANSWERED = frozenset({"Get-IisW3CLog", "Get-IisHttpErrLog", "Get-IisConfig", "Get-IisFailedRequestTrace",
                           "Get-IisContentAcl", "Get-IisRawArtefact", "Get-IisCertificate"})
#: the collectors this model answers (the test suite checks it covers the whole bundled catalog)
MODELLED = ("Get-HostFact", "Get-IisConfig", "Get-IisW3CLog", "Get-IisHttpErrLog", "Get-IisFailedRequestTrace",
            "Get-IisContentAcl", "Get-LocalUserRight", "Get-IisSpn", "Get-AuthEventLog", "Get-IisRawArtefact",
            "Get-IisCertificate")


class ParameterError(ValueError):
    """A parameter PowerShell could not bind: the real host fails the whole pipeline (terminating error)."""


def blob(data: bytes, encoding: str = "gzip+base64", *, truncated: bool = False) -> dict[str, Any]:
    if encoding == "gzip+base64":
        content = base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")
    elif encoding == "base64":
        content = base64.b64encode(data).decode("ascii")
    else:
        content = data.decode("utf-8", "replace")
    return {"encoding": encoding, "content": content, "bytes": len(data), "truncated": truncated}


def _error(probe: str, target: str, category: str, message: str) -> dict[str, str]:
    return {"probe": probe, "target": target, "category": category, "message": message}


def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"Cannot process argument transformation on parameter '{name}'. "
                             f"Cannot convert value \"{value}\" to type \"System.Int32\".") from None


def _time(params: dict[str, Any], name: str, default: dt.datetime) -> dt.datetime:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"Cannot process argument '{name}': \"{value}\" is not a valid ISO 8601 time.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


#: What Ansible's psrp/winrm `raw` module appends to a script so that the exit code comes back.
_EXIT_CODE_LINE = "exit $LASTEXITCODE"


def without_exit_code_line(script: str) -> str:
    """The script as written when a client appended ``exit $LASTEXITCODE`` (Windows runs the script, then that
    line, which changes no output): so that bench/distributed can sweep the lab with Ansible's `raw`."""
    text = normalise_text(script)
    return text[: -len(_EXIT_CODE_LINE)] if text.endswith("\n" + _EXIT_CODE_LINE) else script


class ModelBackend:
    """Answers the bundled collectors for one host of a loaded fleet (implements ``HostBackend``)."""

    def __init__(self, host: HostModel, fleet: FleetModel, bundled: dict[str, BundledCollector], *,
                 clock: Callable[[], float] = time.time, core: CoreHost | None = None) -> None:
        self.host = host
        self.fleet = fleet
        self.bundled = bundled
        self._normalised = {cid: normalise_text(c.script) for cid, c in bundled.items()}
        self._clock = clock
        loaded = dt.datetime.fromtimestamp(clock(), dt.timezone.utc).replace(microsecond=0)
        reference = fleet.reference_time
        #: how far the fleet's stored timestamps are moved when presented
        self.shift = (loaded - reference) if (fleet.shift_time and reference is not None) else dt.timedelta(0)
        self.hostile = tuple(f.mode for f in host.faults.hostile)
        self.transfer_faults = TransferFaults(host.faults.transfer)
        if "clock" in self.hostile:  # a host whose clock is off stamps its logs and events with that clock
            self.shift += dt.timedelta(seconds=host.clock_offset_s)
        self.files = HostFiles(host.files_root)
        self._events: list[dict[str, Any]] | None = None
        answerers = (self._host_fact, None, None, None, None, None, self._user_rights, self._spn, self._auth_events, None,
                     None)
        self._answerers: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], list[dict[str, str]]]]] = \
            {cid: answerer for cid, answerer in zip(MODELLED, answerers, strict=True) if answerer is not None}
        self._core = core
        self._presented: PresentedFiles | None = None

    # -- time ---------------------------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The host's clock (naive UTC): the real clock plus the host's configured offset."""
        real = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).replace(tzinfo=None, microsecond=0)
        return real + dt.timedelta(seconds=self.host.clock_offset_s)

    def _shifted(self, when: dt.datetime) -> dt.datetime:
        return (when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when.tzinfo else when) + self.shift

    @staticmethod
    def answerable() -> frozenset[str]:
        """Collector ids this backend has a model for."""
        return frozenset(MODELLED)

    # -- entry point --------------------------------------------------------------------------------------------
    def answer(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        script = without_exit_code_line(script)
        marker = find_marker(script)
        if marker is None:
            return ScriptAnswer(error="unknown collector: the script has no '# collector-id: <Id>/<n>' marker line; "
                                      "the lab answers only bundled collectors")
        cid, version = marker
        if cid == "_session_probe":  # the default endpoint: FullLanguage, elevated (see toolkit/lab/winrm/endpoints)
            from toolkit.collectors import read_bundled_text
            from toolkit.lab.backend import Endpoint
            from toolkit.lab.winrm.endpoints import session_probe_answer

            if normalise_text(script) != normalise_text(read_bundled_text("_session_probe.ps1")):
                return ScriptAnswer(error="unknown collector _session_probe: the text differs from the bundled probe")
            return session_probe_answer(self.host.ps_version, Endpoint("Microsoft.PowerShell"))
        if cid == "_ssh_bootstrap":
            return ScriptAnswer(error="unknown collector: _ssh_bootstrap is run by the lab's SSH server, not a host model")
        bundled = self.bundled.get(cid)
        if bundled is None:
            return ScriptAnswer(error=f"unknown collector {cid}/{version}: not a bundled collector")
        if version != bundled.version or normalise_text(script) != self._normalised[cid]:
            return ScriptAnswer(error=f"unknown collector {cid}/{version}: the script text differs from the bundled "
                                      f"{cid}/{bundled.version} (changed collector); the lab refuses to answer it")
        params = dict(parameters or {})
        if bundled.collector is not None and hasattr(bundled.collector, "bind"):
            try:
                bound = bundled.collector.bind(params)
                params = {k: v for k, v in bound.items() if v is not None}
            except Exception as exc:  # a binding error is what PowerShell would raise: terminating
                return ScriptAnswer(error=f"{cid}: {exc}")
        if cid in CORE_ANSWERED:
            return self._from_core(cid, params)
        answerer = self._answerers.get(cid)
        if answerer is None:
            return ScriptAnswer(error=f"unknown collector {cid}/{version}: bundled, but the lab has no model for it")
        try:
            data, errors = answerer(params)
        except ParameterError as exc:
            return ScriptAnswer(error=f"{cid}: {exc}")
        envelope = {"schema": SCHEMA, "collector": cid, "version": bundled.version, "host": self.host.computer_name,
                    "time_utc": iso_z(self.now()), "data": data, "errors": errors}
        return self._with_faults(cid, [json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)])

    # -- collectors answered by the target-side C# core (ps_scripts/core), run under Mono --------------------
    def _from_core(self, cid: str, params: dict[str, Any]) -> ScriptAnswer:
        """What the real core answers on this host's files: the code that runs on Windows, here under Mono."""
        core = self._core or shared_core_host()
        folder_parameter = {"Get-IisHttpErrLog": "LogDirectory", "Get-IisRawArtefact": "HttpErrDirectory"}.get(cid)
        if folder_parameter and not params.get(folder_parameter):
            # The wrapper reads HTTP.sys' ErrorLoggingDir from the registry and passes <dir>\HTTPERR.
            configured = self.host.registry_value(HTTP_ERROR_LOGGING_DIR)
            if configured:
                params[folder_parameter] = str(configured).rstrip("\\") + "\\HTTPERR"
        collector = self.bundled[cid].collector
        if collector is not None:
            params = with_defaults(collector, params)  # as the wrapper's param() block would
        scratch = None
        if cid == "Get-IisRawArtefact":
            scratch = tempfile.TemporaryDirectory(prefix="iisfleet-lab-exports-")
            params.update(self._exports(params, Path(scratch.name)))
        if self._presented is None:
            self._presented = PresentedFiles(self.host.files_root, self.shift)
        params.update(lab_only_parameters(cid, self.host, self._presented))
        simulated = SimulatedHost(computer_name=self.host.computer_name, utc_now=iso_z(self.now()),
                                  mounts=self._presented.mounts(), variables=HOST_VARIABLES)
        try:
            answer = core.run(cid, simulated, params)
        except MonoUnavailable as exc:
            return ScriptAnswer(error=f"{cid}: the lab answers this collector with the target-side C# core, "
                                      f"which needs Mono: {exc}")
        finally:
            if scratch is not None:
                scratch.cleanup()
        if answer.error is not None:
            return ScriptAnswer(error=f"{cid}: {answer.error}")
        return self._with_faults(cid, answer.outputs)

    def _exports(self, params: dict[str, Any], scratch: Path) -> dict[str, Any]:
        """What Get-IisRawArtefact's exports copy in the lab (``RawArtefactEntry.cs``): per event log, the host's own
        ``evtx/<log>.evtx`` when the fleet holds one, else an .evtx written from ``events.jsonl`` with the events
        of the window (as the host's export query would select them); an empty path for a log the account may
        not read. And the host's secedit export."""
        since, until = self._window(params)
        if self._events is None:
            self._events = read_events(self.host)
        states = {log.name.lower(): log for log in self.host.event_logs}
        files = []
        for log in params.get("EventLogs") or ["Security", "System", "Application"]:
            state = states.get(str(log).lower())
            if state is not None and not state.readable:
                files.append(f"{log}\t")
                continue
            held = self.host.directory / "evtx" / f"{log}.evtx"
            if held.is_file():
                files.append(f"{log}\t{held}")
                continue
            chosen = sorted(((self._shifted(e["_time"]), e) for e in self._events if e["log"].lower() == str(log).lower()),
                            key=lambda item: (item[0], item[1].get("record_id", 0)))
            records = [{"provider": e.get("provider", ""), "id": e["id"], "record_id": e.get("record_id") or number,
                        "time": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "channel": log,
                        "computer": e.get("machine", self.host.fqdn),
                        "data": [(str(k), "" if v is None else str(v)) for k, v in (e.get("data") or {}).items()]}
                       for number, (when, e) in enumerate(chosen, 1) if since <= when <= until]
            target = scratch / f"{len(files)}.evtx"
            write_evtx(str(target), records)
            files.append(f"{log}\t{target}")
        secedit = self.host.directory / "secedit.inf"
        return {"__EventLogFiles": files, "__SeceditFile": str(secedit) if secedit.is_file() else ""}

    def _with_faults(self, cid: str, outputs: list[str]) -> ScriptAnswer:
        for mode in self.hostile:  # a compromised host rewrites what its collectors printed
            rewritten = []
            for text in outputs:
                try:
                    envelope = json.loads(text)
                except ValueError:
                    rewritten.append(text)
                    continue
                hostile_text, error = hostile_envelope(mode, MODELLED.index(cid), envelope,
                                                       password=self.fleet.password)
                if error is not None:
                    return ScriptAnswer(error=error)
                rewritten.append(text if hostile_text is None else hostile_text)
            outputs = rewritten
        delay = 0.0
        for fault in self.host.faults.slow_collector:
            if fault.collector in ("*", cid):
                delay = max(delay, fault.delay_s)
        for fault in self.host.faults.garbage_output:
            if fault.collector in ("*", cid):
                if fault.mode == "truncated":
                    text = "\n".join(outputs)
                    return ScriptAnswer(output=[text[: max(1, len(text) // 2)]], delay_s=delay)
                return ScriptAnswer(output=["WARNING: Get-Item : Cannot find path", "System.Object[]",
                                            "\x1b[31mThis is not JSON\x1b[0m"], delay_s=delay)
        return self.transfer_faults.apply(cid, ScriptAnswer(output=list(outputs), delay_s=delay))

    # -- helpers ------------------------------------------------------------------------------------------------
    def _apphost(self) -> tuple[AppHostSummary | None, list[dict[str, str]]]:
        found = None if not self.host.iis_installed else self.files.file(APPHOST_PATH)
        if found is None:
            return None, [_error("applicationHost.config", APPHOST_PATH, "not-installed",
                             "applicationHost.config not found; is IIS installed?")]
        try:
            return summarise(found[1].read_bytes().decode("utf-8-sig")), []
        except Exception as exc:  # broken XML on the host: the collectors report it and go on
            return None, [_error("applicationHost.config", APPHOST_PATH, "other", f"Cannot parse the file: {exc}")]

    def _host_fact(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        host = self.host
        return {
            "computer_name": host.computer_name, "fqdn": host.fqdn,
            "domain": self.fleet.domain.name if host.domain_joined else "WORKGROUP",
            "domain_joined": host.domain_joined, "os_caption": host.os_caption, "os_version": host.os_version,
            "os_build": host.os_build, "ps_version": host.ps_version, "utc_now": iso_z(self.now()),
            "iis_installed": host.iis_installed, "iis_version": host.iis_version if host.iis_installed else None,
            "auth_modules": list(host.auth_modules) if host.iis_installed else [], "time_zone": host.time_zone,
        }, []

    def _window(self, params: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
        now = self.now()
        return _time(params, "Since", now - dt.timedelta(hours=24)), _time(params, "Until", now)

    def _user_rights(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        errors = []
        path = self.host.directory / "secedit.inf"
        raw = path.read_bytes() if path.exists() else None
        if raw is None:
            errors.append(_error("secedit", "secedit /export /areas USER_RIGHTS", "access-denied",
                                 "secedit wrote no export (exit code 1): Task is completed. See log for details."))

        def stamp(value: dt.datetime | None) -> str | None:
            return None if value is None else iso_z(self._shifted(value).replace(tzinfo=dt.timezone.utc))
        return {
            "secedit_inf": blob(raw, "base64") if raw is not None else None,
            "groups": [{"name": g.name, "sid": g.sid, "members": [{"name": n, "sid": s or None} for n, s in g.members]}
                       for g in self.host.groups],
            "users": [{"name": u.name, "sid": u.sid, "enabled": u.enabled, "locked_out": u.locked_out,
                       "password_expired": u.password_expired, "password_required": u.password_required,
                       "account_expires": stamp(u.account_expires), "password_last_set": stamp(u.password_last_set)}
                      for u in self.host.users],
        }, errors

    def _setspn(self, account: str) -> tuple[int, str]:
        """What ``setspn -L <account>`` prints on this host (the domain model answers for the DC)."""
        domain = self.fleet.domain
        if not self.host.domain_joined:
            return 1, (f"FindDomainForAccount: Call to DsGetDcNameWithAccountW failed with return value 0x0000054B\n"
                       f"Could not find account {account}")
        found = domain.find(account) or domain.find(account + "$")
        if found is None and account.rstrip("$").upper() == self.host.computer_name.upper():
            spns = "\n".join(f"\t{s}" for s in self._machine_spns())
            return 0, f"Registered ServicePrincipalNames for CN={self.host.computer_name},OU=Servers,{domain.base_dn}:\n{spns}"
        if found is None:
            return 1, (f"FindDomainForAccount: Call to DsGetDcNameWithAccountW failed with return value 0x00000525\n"
                       f"Could not find account {account}")
        return 0, "\n".join([f"Registered ServicePrincipalNames for {found.distinguished_name}:",
                             *[f"\t{spn}" for spn in found.spns]])

    def _machine_spns(self) -> list[str]:
        short, fqdn = self.host.computer_name, self.host.fqdn
        return [f"WSMAN/{fqdn}", f"WSMAN/{short}", f"TERMSRV/{fqdn}", f"TERMSRV/{short}", f"RestrictedKrbHost/{short}",
                f"HOST/{short}", f"RestrictedKrbHost/{fqdn}", f"HOST/{fqdn}"]

    def _spn(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        outputs: dict[str, tuple[int, str]] = {}

        def listing(account: str, source: str) -> dict[str, Any]:
            if account not in outputs:
                outputs[account] = self._setspn(account)
            code, output = outputs[account]
            return {"account": account, "source": source, "command": f"setspn -L {account}", "exit_code": code, "output": output}
        queries = [listing(self.host.computer_name, "machine")]
        summary, errors = self._apphost()
        for pool in summary.pools if summary else []:
            if pool.identity_type == "SpecificUser" and pool.user_name:
                queries.append(listing(pool.user_name, f"app-pool:{pool.name}"))
        return {"machine_account": f"{self.host.computer_name}$", "queries": queries}, errors

    def _auth_events(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        since, until = self._window(params)
        max_events = _int(params, "MaxEvents", 500)
        if self._events is None:
            self._events = read_events(self.host)
        states = {log.name.lower(): log for log in self.host.event_logs}
        errors: list[dict[str, str]] = []
        events: list[dict[str, Any]] = []
        queries = (("Security", "security-events", lambda e: e["id"] in (4625, 1102, 1104)),
                   ("System", "kerberos-events", lambda e: e["id"] == 4 and e.get("provider") in ("Microsoft-Windows-Security-Kerberos", "Kerberos")))
        for log, probe, wanted in queries:
            state = states.get(log.lower())
            if state is not None and not state.readable:
                errors.append(_error(probe, log, "access-denied", "Attempted to perform an unauthorized operation."))
                continue
            found = [(self._shifted(e["_time"]), e) for e in self._events if e["log"] == log and wanted(e)]
            found = sorted(((w, e) for w, e in found if since <= w <= until), key=lambda i: (i[0], i[1].get("record_id", 0)), reverse=True)
            if len(found) >= max_events:
                errors.append(_error(probe, log, "cap", f"MaxEvents ({max_events}) reached; older events in the window were not read."))
                found = found[:max_events]
            events += [{"log": log, "id": e["id"], "provider": e.get("provider", ""), "time_utc": iso_z(w.replace(tzinfo=dt.timezone.utc)),
                        "record_id": e.get("record_id", 0), "machine": e.get("machine", self.host.fqdn),
                        "data": {str(k): ("" if v is None else str(v)) for k, v in (e.get("data") or {}).items()}}
                       for w, e in found]
        logs = [{"name": s.name, "max_size_bytes": s.max_size_bytes, "file_size_bytes": s.file_size_bytes,
                 "record_count": s.record_count, "is_full": s.is_full, "retention": s.retention} for s in self.host.event_logs]
        crash = self.host.registry_value(CRASH_ON_AUDIT_FAIL)
        return {
            "events": events,
            "logon_counts": {"4624_type3": int(self.host.logon_counts.get("4624_type3", 0)),
                             "4624_type8": int(self.host.logon_counts.get("4624_type8", 0))},
            "logs": logs,
            "crash_on_audit_fail": None if crash is None else int(crash),
        }, errors
