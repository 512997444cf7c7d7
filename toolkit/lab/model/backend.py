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
import re
import time
from collections.abc import Callable
from typing import Any

from toolkit.lab.backend import ScriptAnswer
from toolkit.lab.model.corehost import CoreHost, SimulatedHost, shared_core_host
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.lab.model.appconfig import AppHostSummary, summarise
from toolkit.lab.model.catalog import BundledCollector, find_marker, normalise_text
from toolkit.lab.model.fleet import FleetModel, HostModel, iso_z, read_events
from toolkit.targetcore import MonoUnavailable
from toolkit.lab.model.winfs import HostFiles, expand, normalise

SCHEMA = "iisfleet.collector/1"
APPHOST_PATH = "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
REDIRECTION_PATH = "C:\\Windows\\System32\\inetsrv\\config\\redirection.config"
CRASH_ON_AUDIT_FAIL = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\CrashOnAuditFail"
HTTP_ERROR_LOGGING_DIR = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\HTTP\\Parameters\\ErrorLoggingDir"
#: answered by the target-side C# core under Mono, not by a Python model
CORE_ANSWERED = frozenset({"Get-IisW3CLog", "Get-IisHttpErrLog"})
#: the collectors this model answers (the test suite checks it covers the whole bundled catalog)
MODELLED = ("Get-HostFact", "Get-IisConfig", "Get-IisW3CLog", "Get-IisHttpErrLog", "Get-IisFailedRequestTrace",
            "Get-IisContentAcl", "Get-LocalUserRight", "Get-IisSpn", "Get-AuthEventLog")


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


def _strings(params: dict[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value in (None, "", []):
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


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
        self.files = HostFiles(host.files_root)
        self._events: list[dict[str, Any]] | None = None
        answerers = (self._host_fact, self._iis_config, None, None, self._freb,
                     self._content_acl, self._user_rights, self._spn, self._auth_events)
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
        marker = find_marker(script)
        if marker is None:
            return ScriptAnswer(error="unknown collector: the script has no '# collector-id: <Id>/<n>' marker line; "
                                      "the lab answers only bundled collectors")
        cid, version = marker
        if cid == "_session_probe":  # the default endpoint: FullLanguage, elevated (see toolkit/lab/winrm/endpoints)
            from toolkit.collectors import read_bundled_text
            from toolkit.lab.winrm.endpoints import session_probe_answer

            if normalise_text(script) != normalise_text(read_bundled_text("_session_probe.ps1")):
                return ScriptAnswer(error="unknown collector _session_probe: the text differs from the bundled probe")
            return session_probe_answer(self.host.ps_version, "FullLanguage", True)
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
        if cid == "Get-IisHttpErrLog" and not params.get("LogDirectory"):
            # The wrapper reads HTTP.sys' ErrorLoggingDir from the registry and passes <dir>\HTTPERR.
            configured = self.host.registry_value(HTTP_ERROR_LOGGING_DIR)
            if configured:
                params["LogDirectory"] = str(configured).rstrip("\\") + "\\HTTPERR"
        if self._presented is None:
            self._presented = PresentedFiles(self.host.files_root, self.shift)
        simulated = SimulatedHost(computer_name=self.host.computer_name, utc_now=iso_z(self.now()),
                                  mounts=self._presented.mounts(), variables=HOST_VARIABLES)
        try:
            answer = core.run(cid, simulated, params)
        except MonoUnavailable as exc:
            return ScriptAnswer(error=f"{cid}: the lab answers this collector with the target-side C# core, "
                                      f"which needs Mono: {exc}")
        if answer.error is not None:
            return ScriptAnswer(error=f"{cid}: {answer.error}")
        return self._with_faults(cid, answer.outputs)

    def _with_faults(self, cid: str, outputs: list[str]) -> ScriptAnswer:
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
        return ScriptAnswer(output=list(outputs), delay_s=delay)

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

    def _read(self, windows_path: str) -> bytes | None:
        found = self.files.file(windows_path)
        return found[1].read_bytes() if found else None

    def _shift_text(self, text: str) -> str:
        """Move ISO timestamps inside FREB XML (``SystemTime="..."``)."""
        if not self.shift:
            return text

        def move(match: re.Match[str]) -> str:
            raw = match.group(2)
            try:
                when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None) + self.shift
            except ValueError:
                return match.group(0)
            fraction = raw[19:-1] if raw.endswith("Z") else ""
            return f'{match.group(1)}{when.strftime("%Y-%m-%dT%H:%M:%S")}{fraction}Z"'
        return re.sub(r'(SystemTime=")([0-9T:.\-]+Z)"', move, text)

    # -- collectors ---------------------------------------------------------------------------------------------
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

    def _blob_budget(self, data: bytes, budget: list[int], path: str, errors: list[dict[str, str]], cap: int) -> dict[str, Any]:
        keep = max(0, min(budget[0], len(data)))
        budget[0] -= keep
        truncated = keep < len(data)
        if truncated:
            errors.append(_error("max-bytes", path, "cap", f"MaxBytes ({cap}) reached; the file was cut."))
        return blob(data[:keep], truncated=truncated)

    def _iis_config(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        depth = _int(params, "MaxWebConfigDepth", 3)
        count = _int(params, "MaxWebConfigCount", 200)
        max_bytes = _int(params, "MaxBytes", 8000000)
        budget = [max_bytes]
        data: dict[str, Any] = {"application_host_config": None, "web_configs": [], "redirection_config": None}
        summary, errors = self._apphost()
        raw = self._read(APPHOST_PATH) if summary is not None else None
        if raw is not None:
            data["application_host_config"] = {"path": APPHOST_PATH, "content": self._blob_budget(raw, budget, APPHOST_PATH, errors, max_bytes)}
        redirection = self._read(REDIRECTION_PATH)
        if redirection is not None:
            data["redirection_config"] = {"path": REDIRECTION_PATH, "content": self._blob_budget(redirection, budget, REDIRECTION_PATH, errors, max_bytes)}
        if summary is None:
            return data, errors
        seen: set[str] = set()
        cap_reported = False
        vdirs = sorted((v for site in summary.sites for v in site.vdirs), key=lambda v: len(v.virtual_path), reverse=True)
        for vdir in vdirs:
            physical = expand(vdir.physical_path).rstrip("\\")
            if not physical or not self.files.is_dir(physical):
                errors.append(_error("physical-path", physical, "not-found",
                                     f"Physical path of {vdir.site}{vdir.virtual_path} does not exist or cannot be reached."))
                continue
            for path, local in self.files.files_under(physical, max_depth=depth):
                if path.rsplit("\\", 1)[-1].lower() != "web.config" or path.lower() in seen:
                    continue
                seen.add(path.lower())
                if len(data["web_configs"]) >= count:
                    if not cap_reported:
                        errors.append(_error("max-web-config-count", path, "cap",
                                             f"MaxWebConfigCount ({count}) reached; further web.config files were skipped."))
                        cap_reported = True
                    continue
                relative = path[len(physical):].rsplit("\\", 1)[0].replace("\\", "/")
                virtual = (vdir.virtual_path.rstrip("/") + "/" + relative.strip("/")).rstrip("/") or "/"
                data["web_configs"].append({
                    "site": vdir.site, "application_path": vdir.application_path, "virtual_path": virtual,
                    "physical_path": vdir.physical_path, "path": path,
                    "content": self._blob_budget(local.read_bytes(), budget, path, errors, max_bytes)})
        return data, errors

    def _roots(self, summary: AppHostSummary | None, attribute: str, server_default: str) -> list[str]:
        """Where a log collector looks: each site's ``<dir>\\W3SVC<id>``, the site default, the server default."""
        roots: list[str] = []
        if summary is not None:
            for site in summary.sites:
                roots.append(f"{getattr(site, attribute).rstrip(chr(92))}\\W3SVC{site.id}")
            roots.append(getattr(summary, f"default_{attribute}"))
            if attribute == "log_directory" and summary.central_log_directory:
                roots.append(summary.central_log_directory)
        roots.append(server_default)
        return roots

    def _window(self, params: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
        now = self.now()
        return _time(params, "Since", now - dt.timedelta(hours=24)), _time(params, "Until", now)

    def _freb(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        since, _ = self._window(params)
        status = _int(params, "StatusCode", 401)
        max_files = _int(params, "MaxFiles", 50)
        max_bytes = _int(params, "MaxBytes", 20000000)
        summary, errors = self._apphost()
        roots = self._roots(summary, "freb_directory", "%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles")
        status_pattern = re.compile(r'<failedRequest\b[^>]*?\sstatusCode="' + str(status) + r'(\.\d+)?"')
        searched: list[str] = []
        candidates = []
        seen: set[str] = set()
        for root in roots:
            expanded = expand(root).rstrip("\\")
            if expanded.lower() in {s.lower() for s in searched} or not self.files.is_dir(expanded):
                continue
            searched.append(expanded)
            for folder in [expanded] + [d for d in self.files.subdirs(expanded) if d.rsplit("\\", 1)[-1].upper().startswith("W3SVC")]:
                match = re.search(r"\\W3SVC(\d+)$", folder, re.IGNORECASE)
                for path, local in self.files.files_under(folder, max_depth=0):
                    name = path.rsplit("\\", 1)[-1].lower()
                    if not (name.startswith("fr") and name.endswith(".xml")) or path.lower() in seen:
                        continue
                    seen.add(path.lower())
                    data = self._shift_text(local.read_bytes().decode("utf-8", "replace")).encode("utf-8")
                    stamps = re.findall(rb'SystemTime="([0-9T:\-]{19})', data)
                    modified = (dt.datetime.fromisoformat(stamps[-1].decode()) if stamps
                                else dt.datetime.fromtimestamp(local.stat().st_mtime, dt.timezone.utc).replace(tzinfo=None))
                    if modified >= since:
                        candidates.append((modified, path, data, int(match.group(1)) if match else None))
        files = []
        budget = max_bytes
        for modified, path, data, site_id in sorted(candidates, key=lambda c: (c[0], c[1]), reverse=True):
            if len(files) >= max_files:
                errors.append(_error("max-files", path, "cap", f"MaxFiles ({max_files}) matching traces returned; older ones were skipped."))
                break
            if not status_pattern.search(data[:4096].decode("utf-8", "replace")):
                continue
            if len(data) > budget:
                errors.append(_error("max-bytes", path, "cap", f"MaxBytes ({max_bytes}) reached; this and older traces were skipped."))
                break
            budget -= len(data)
            files.append({"path": path, "site_id": site_id, "modified_utc": iso_z(modified.replace(tzinfo=dt.timezone.utc)),
                          "size_bytes": len(data), "content": blob(data)})
        return {"directories": searched, "files": files}, errors

    def _acl_for(self, windows_path: str) -> str:
        """The path's own entry in ``acls``, else the nearest parent's (children inherit), else a default."""
        key = normalise(windows_path)
        while key:
            if key in self.host.acls:
                return self.host.acls[key]
            if "\\" not in key.rstrip("\\") or key.endswith(":\\"):
                break
            key = key.rsplit("\\", 1)[0]
            if key.endswith(":"):
                key += "\\"
        return "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)"

    def _content_acl(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        max_paths = _int(params, "MaxPaths", 200)
        summary, errors = self._apphost()
        paths: list[dict[str, Any]] = []
        vdirs = [v for site in summary.sites for v in site.vdirs] if summary else []
        for vdir in vdirs:
            if len(paths) >= max_paths:
                errors.append(_error("max-paths", "", "cap", f"{len(vdirs)} paths are configured; only the first {max_paths} (MaxPaths) were examined."))
                break
            expanded = expand(vdir.physical_path)
            exists = self.files.exists(expanded) or normalise(expanded) in self.host.acls
            is_unc = expanded.startswith("\\\\")
            if not exists:
                errors.append(_error("physical-path", expanded, "not-found", "Physical path does not exist or cannot be reached from this session."))
            share = None
            if is_unc:
                parts = expanded.lstrip("\\").split("\\")
                if len(parts) >= 2 and parts[0] and parts[1]:
                    share = {"server": parts[0], "name": parts[1], "sddl": self.host.shares.get(f"\\\\{parts[0]}\\{parts[1]}".lower())}
            paths.append({"site": vdir.site, "application_path": vdir.application_path, "virtual_path": vdir.virtual_path,
                          "physical_path": vdir.physical_path, "expanded_path": expanded, "exists": exists,
                          "is_unc": is_unc, "sddl": self._acl_for(expanded) if exists else None, "share": share})
        return {"paths": paths}, errors

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
