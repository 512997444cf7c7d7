"""One host's evidence, assembled from its collector envelopes into typed records.

The rules never see raw envelopes: they read a :class:`HostEvidence`, whose fields are the typed
records ``toolkit.parsers`` produce plus a compact view of the W3C analysis (:class:`LogView`).
Whatever could not be collected or parsed is named in ``HostEvidence.missing`` (evidence key →
reason), so a rule can say what it did not see and lower its confidence instead of guessing.

Evidence keys used in ``missing``: ``facts``, ``config``, ``shared-config`` (shared configuration is
on: the local files may not be what IIS uses), ``config-warnings`` (parts of the
configuration the parser could not apply), ``w3c``, ``freb``, ``acl``, ``rights``, ``spn``, ``events``,
``security-log``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from toolkit.errors import InputError
from toolkit.parsers.certificates import SslBinding
from toolkit.parsers.types import (
    EventLogState,
    FrebTrace,
    IisConfig,
    LogonFailure,
    Principal,
    SecurityDescriptor,
    SpnRecord,
)

#: sc-win32-status of a Negotiate/NTLM continuation leg (SEC_E_NO_CREDENTIALS): a handshake when the
#: client then gets in, terminal (a rejected Kerberos AP-REQ, an abandoned or failed continuation) when not
HANDSHAKE_WIN32 = 0x8009030E

#: collector id → the evidence key it provides
COLLECTOR_KEYS: dict[str, str] = {
    "Get-HostFact": "facts",
    "Get-IisConfig": "config",
    "Get-IisW3CLog": "w3c",
    "Get-IisFailedRequestTrace": "freb",
    "Get-IisContentAcl": "acl",
    "Get-LocalUserRight": "rights",
    "Get-IisSpn": "spn",
    "Get-AuthEventLog": "events",
}

#: Caps on what we keep from untrusted host output (per host).
MAX_CLIENT_PROFILES = 5000
MAX_USERS_PER_CLIENT = 200


@dataclass(frozen=True)
class LogSample:
    """One terminal 401 row, as cited in a finding."""

    source: str
    line: int
    time: str = ""
    c_ip: str = ""
    user: str = ""
    uri: str = ""
    user_agent: str = ""

    @property
    def anonymous(self) -> bool:
        return self.user in ("", "-")


@dataclass(frozen=True)
class LogGroup:
    """The 401s of one (site, substatus, win32) on one host, split terminal/handshake."""

    site: str
    substatus: int
    win32: int
    count: int
    terminal: int
    handshake: int
    samples: tuple[LogSample, ...] = ()
    top_users: tuple[tuple[str, int], ...] = ()
    top_clients: tuple[tuple[str, int], ...] = ()
    top_uris: tuple[tuple[str, int], ...] = ()

    @property
    def real_users(self) -> dict[str, int]:
        """User names on the group's rows ("-" removed), with their row counts."""
        return {u: n for u, n in self.top_users if u not in ("", "-")}

    @property
    def anonymous_share(self) -> float:
        """Share of the group's rows that carried no user name (from the counts, else the samples)."""
        total = sum(n for _, n in self.top_users)
        if total:
            return sum(n for u, n in self.top_users if u in ("", "-")) / total
        if self.samples:
            return sum(1 for s in self.samples if s.anonymous) / len(self.samples)
        return 1.0

    @property
    def anonymous_terminal(self) -> int:
        """Terminal rows that carried no user name (estimated from the share when counts mix in handshakes)."""
        return round(self.terminal * self.anonymous_share)

    @property
    def named_terminal(self) -> int:
        return self.terminal - self.anonymous_terminal


@dataclass(frozen=True)
class ClientProfile:
    """What one client address did in the kept log lines: who authenticated from it, with what agents."""

    c_ip: str
    users: frozenset[str]
    user_agents: frozenset[str]
    requests: int


@dataclass(frozen=True)
class LogView:
    groups: tuple[LogGroup, ...] = ()
    requests_by_site: Mapping[str, int] = field(default_factory=dict)
    handshake_401: int = 0
    by_hour: Mapping[str, int] = field(default_factory=dict)
    clients: Mapping[str, ClientProfile] = field(default_factory=dict)
    #: site → terminal 401.2 rows that were only the challenge round of an attempt that then failed
    #: with another 401 (same client and URL): they belong to that failure, not to a 401.2 cause
    challenges_before_failure: Mapping[str, int] = field(default_factory=dict)
    #: site → terminal 401.1 SEC_E_NO_CREDENTIALS legs followed by another 401 of the same attempt (the
    #: NTLM challenge before a rejected answer): they belong to that failure
    legs_before_failure: Mapping[str, int] = field(default_factory=dict)

    @property
    def terminal_401(self) -> int:
        return sum(g.terminal for g in self.groups)

    @property
    def requests(self) -> int:
        return sum(self.requests_by_site.values())


@dataclass(frozen=True)
class ContentPath:
    """A physical path behind a site/application/vdir and its security descriptors."""

    site: str
    application_path: str
    virtual_path: str
    physical_path: str
    expanded_path: str
    exists: bool
    is_unc: bool
    sd: SecurityDescriptor | None
    share_name: str = ""
    share_sd: SecurityDescriptor | None = None
    #: where ``sd`` was read when not by the web server's collector (e.g. "file server fs01 over SMB")
    sd_source: str = ""
    #: where ``share_sd`` was read when not by the web server's collector
    share_sd_source: str = ""

    @property
    def url_path(self) -> str:
        app = self.application_path.rstrip("/")
        vdir = self.virtual_path if self.virtual_path not in ("", "/") else ""
        return (app + vdir) or "/"


@dataclass(frozen=True)
class HostEvidence:
    name: str
    status: str = "ok"
    error: str | None = None
    facts: Mapping[str, Any] | None = None
    config: IisConfig | None = None
    #: where redirection.config sends IIS for its configuration, when shared configuration is on
    shared_config: str | None = None
    #: the shared applicationHost.config the controller read over SMB (then ``config`` is that file)
    shared_config_read: str | None = None
    log: LogView = field(default_factory=LogView)
    freb: tuple[FrebTrace, ...] = ()
    content: tuple[ContentPath, ...] = ()
    rights: Mapping[str, tuple[Principal, ...]] | None = None
    groups: tuple[Mapping[str, Any], ...] = ()
    users: tuple[Mapping[str, Any], ...] = ()
    machine_account: str = ""
    spn_queries: tuple[tuple[str, str], ...] = ()  # (account, source) queried
    spns: tuple[SpnRecord, ...] = ()
    logon_failures: tuple[LogonFailure, ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()  # other raw events: 1102/1104, Kerberos 4
    event_logs: tuple[EventLogState, ...] = ()
    crash_on_audit_fail: int | None = None
    #: HTTP.sys SSL bindings and their certificates (Get-IisCertificate), whether it answered, and its host time
    ssl_bindings: tuple[SslBinding, ...] = ()
    ssl_collected: bool = False
    ssl_time: dt.datetime | None = None
    #: evidence key → why it is missing or incomplete
    missing: Mapping[str, str] = field(default_factory=dict)
    #: evidence keys the playbook chose not to collect on this host (the step's ``when:`` was false):
    #: still in ``missing`` so a rule says why it had no such evidence, but not a problem of the host
    not_needed: frozenset[str] = frozenset()
    #: (right id of toolkit.jea.rights, what said so): the session refused collectors for lack of it
    environment: tuple[tuple[str, str], ...] = ()

    def is_missing(self, key: str) -> bool:
        return key in self.missing

    def site_names(self) -> list[str]:
        if self.config is not None:
            return [s.name for s in self.config.sites]
        return sorted(self.log.requests_by_site)


# --- assembly ----------------------------------------------------------------------------------

def decode_blob(blob: Mapping[str, Any] | None) -> bytes:
    """Bytes of a collector blob (docs/contracts.md §1.2). Prefers the contract module's decoder."""
    if not blob:
        return b""
    try:
        from toolkit.contract import decode_blob as contract_decode  # type: ignore[attr-defined]
    except ImportError:
        contract_decode = None
    if contract_decode is not None:
        return contract_decode(dict(blob))
    encoding = blob.get("encoding", "text")
    content = blob.get("content") or ""
    if encoding == "text":
        return str(content).encode("utf-8")
    raw = base64.b64decode(content)
    return gzip.decompress(raw) if encoding == "gzip+base64" else raw


def _text(data: bytes) -> str:
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors="replace")


def _err_summary(error: Mapping[str, Any]) -> str:
    probe = error.get("probe") or "probe"
    category = error.get("category") or "other"
    message = str(error.get("message") or "")[:200]
    target = error.get("target")
    where = f" ({target})" if target else ""
    return f"{probe}{where}: {category}: {message}".strip()


def build_host_evidence(name: str, envelopes: Mapping[str, Mapping[str, Any]], *, status: str = "ok",
                        error: str | None = None,
                        steps: Sequence[Mapping[str, Any]] = ()) -> HostEvidence:
    """Parse one host's envelopes (collector id → envelope as stored in a run dir).

    ``steps`` are the run's step records for the host (``host.json``), used to say why a collector
    is missing (skipped by the playbook, failed, timed out). Never raises for bad host data: a
    collector that is absent, reported errors, or does not parse becomes an entry in ``missing``
    naming what and why.
    """
    missing: dict[str, str] = {}
    not_needed: set[str] = set()
    kw: dict[str, Any] = {}
    step_by_collector = {str(st.get("collector")): st for st in steps if isinstance(st, Mapping)}
    for collector, key in COLLECTOR_KEYS.items():
        envelope = envelopes.get(collector)
        if envelope is None:
            step = step_by_collector.get(collector)
            missing[key] = _absent_reason(collector, step, status, error)
            if _skipped_by_condition(step):
                not_needed.add(key)
            continue
        errors = [e for e in envelope.get("errors") or [] if isinstance(e, Mapping)]
        data = envelope.get("data") or {}
        # The collector's own words first: "IIS is not installed" says more than "empty XML".
        for err in errors:
            sub = _classify_error(collector, err)
            missing.setdefault(sub, f"{collector} reported {_err_summary(err)}")
        try:
            builder = _BUILDERS[collector]
            builder(data, kw, missing)
        except Exception as exc:  # noqa: BLE001 - untrusted input: a parse failure is missing evidence
            missing.setdefault(key, f"{collector} could not be parsed: {exc}"[:300])

    certificate_step = step_by_collector.get(CERTIFICATE_COLLECTOR)
    _certificates(envelopes.get(CERTIFICATE_COLLECTOR), certificate_step, status, error, kw, missing)
    if envelopes.get(CERTIFICATE_COLLECTOR) is None and _skipped_by_condition(certificate_step):
        not_needed.add("certificates")
    # Map W3C sites ("W3SVC2") to configured site names now that both are known.
    log: LogView = kw.pop("log", LogView())
    config: IisConfig | None = kw.get("config")
    log = _rename_log_sites(log, config)
    return HostEvidence(name=name, status=status, error=error, log=log, missing=missing,
                        not_needed=frozenset(not_needed), environment=_environment_refusals(steps), **kw)


def _skipped_by_condition(step: Mapping[str, Any] | None) -> bool:
    """The step did not run because its ``when:`` evaluated false (``toolkit.playbooks`` words it
    "when '<text>' is false"): the playbook's choice. A condition that could not be evaluated (a fact
    missing) is not a choice and stays a problem."""
    reason = str((step or {}).get("skipped_reason") or "")
    return step is not None and step.get("status") == "skipped" and reason.startswith("when ") \
        and " is false" in reason


#: Get-IisCertificate is not in COLLECTOR_KEYS: runs that never asked for it (older playbooks) must not list it
#: as missing on every host; when a run did ask and it failed, that is named like any other collector.
CERTIFICATE_COLLECTOR = "Get-IisCertificate"


def _certificates(envelope: Mapping[str, Any] | None, step: Mapping[str, Any] | None, status: str,
                  error: str | None, kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.parsers.certificates import parse_ssl_bindings, parse_utc

    if envelope is None:
        if step is not None:
            missing["certificates"] = _absent_reason(CERTIFICATE_COLLECTOR, step, status, error)
        return
    for err in envelope.get("errors") or []:
        if isinstance(err, Mapping):
            key = "certificates-capped" if str(err.get("category") or "") == "cap" else "certificates"
            missing.setdefault(key, f"{CERTIFICATE_COLLECTOR} reported {_err_summary(err)}")
    try:
        kw["ssl_bindings"] = parse_ssl_bindings(envelope.get("data") or {})
        kw["ssl_collected"] = True
        kw["ssl_time"] = parse_utc(envelope.get("time_utc"))
    except Exception as exc:  # noqa: BLE001 - untrusted input: a parse failure is missing evidence
        missing.setdefault("certificates", f"{CERTIFICATE_COLLECTOR} could not be parsed: {exc}"[:300])


def _environment_refusals(steps: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The steps the session refused (error category ``environment``), each with the right it lacked."""
    from toolkit.jea.rights import right_in_error

    out: dict[str, str] = {}
    for step in steps:
        error = step.get("error") if isinstance(step, Mapping) else None
        if not isinstance(error, Mapping) or error.get("category") != "environment":
            continue
        message = " ".join(str(error.get("message") or "").split())[:300]
        right = right_in_error(message)
        if right is not None:
            out.setdefault(right, f"{step.get('collector') or 'a collector'} refused: {message}")
    return tuple(sorted(out.items()))


def _absent_reason(collector: str, step: Mapping[str, Any] | None, status: str, error: str | None) -> str:
    if step is not None:
        if step.get("skipped_reason"):
            return f"{collector} was skipped: {step['skipped_reason']}"
        step_error = step.get("error")
        if isinstance(step_error, Mapping):
            step_error = step_error.get("message") or step_error.get("category")
        if step_error:
            return f"{collector} failed: {step_error}"[:300]
    reason = f"{collector} was not collected"
    if status in ("failed", "skipped", "partial") and error:
        reason += f" (host {status}: {error})"
    return reason


def _classify_error(collector: str, err: Mapping[str, Any]) -> str:
    """The evidence key a collector's error takes away. A cap only trims (``<key>-capped``: named on
    the host, but it does not lower confidence)."""
    key = COLLECTOR_KEYS[collector]
    if str(err.get("category") or "") == "cap":
        return f"{key}-capped"
    if collector == "Get-AuthEventLog":
        text = " ".join(str(err.get(k) or "") for k in ("probe", "target", "message")).lower()
        if "security" in text:
            return "security-log"
    return key


def _site_name_by_id(config: IisConfig | None) -> dict[int, str]:
    return {s.id: s.name for s in config.sites} if config else {}


def _rename_log_sites(log: LogView, config: IisConfig | None) -> LogView:
    by_id = _site_name_by_id(config)
    if not by_id:
        return log

    def rename(site: str) -> str:
        text = site.strip()
        upper = text.upper()
        if upper.startswith("W3SVC") and text[5:].isdigit():
            return by_id.get(int(text[5:]), text)
        if text.isdigit():
            return by_id.get(int(text), text)
        return text

    groups = tuple(replace(g, site=rename(g.site)) for g in log.groups)
    requests: dict[str, int] = defaultdict(int)
    for site, n in log.requests_by_site.items():
        requests[rename(site)] += n
    def renamed(counts: Mapping[str, int]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for site, n in counts.items():
            out[rename(site)] += n
        return dict(out)

    return replace(log, groups=groups, requests_by_site=dict(requests),
                   challenges_before_failure=renamed(log.challenges_before_failure),
                   legs_before_failure=renamed(log.legs_before_failure))


def _facts(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    kw["facts"] = dict(data)


def _config(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.parsers.iisconfig import WebConfigText, parse_iis_config

    app_host = data.get("application_host_config") or {}
    path = str(app_host.get("path") or "applicationHost.config")
    text = _text(decode_blob(app_host.get("content")))
    if not text.strip():
        missing.setdefault("config", "Get-IisConfig returned no applicationHost.config")
        return
    web_configs = []
    for wc in data.get("web_configs") or []:
        web_configs.append(WebConfigText(site=str(wc.get("site") or ""),
                                         virtual_path=str(wc.get("virtual_path") or wc.get("application_path")
                                                          or "/"),
                                         path=str(wc.get("path") or "web.config"),
                                         text=_text(decode_blob(wc.get("content")))))
    config = parse_iis_config(text, path, web_configs)
    kw["config"] = config
    try:
        shared = _shared_configuration(data)
    except InputError as exc:
        missing["shared-config"] = (f"redirection.config could not be read ({exc.message[:200]}): shared "
                                    "configuration may be on, and the local applicationHost.config may not be in force")
        shared = None
    read = data.get("shared_configuration_read")
    if shared is not None and shared.enabled and isinstance(read, Mapping):
        # The controller read the shared applicationHost.config on the file server (toolkit/directory/smb.py):
        # the configuration parsed above is the one in force, cited by its UNC path.
        kw["shared_config_read"] = str(read.get("path") or shared.path)[:500]
    elif shared is not None and shared.enabled:
        kw["shared_config"] = shared.path[:500]
        missing["shared-config"] = (
            f"SHARED CONFIGURATION IS ON: redirection.config points IIS at {shared.path[:200] or '(no path)'}, so the "
            "settings in force come from that shared applicationHost.config, not the local copy iisfleet read; "
            "every configuration-based finding for this host may be wrong until the shared file is read")
    if config.warnings:
        # Host-wide and usually about one file: named, but it does not lower every finding's confidence.
        missing.setdefault("config-warnings", "configuration partly unreadable: " + "; ".join(config.warnings[:3]))


def _shared_configuration(data: Mapping[str, Any]) -> Any:
    """The collector's ``shared_configuration`` record, else what its redirection.config blob says."""
    from toolkit.parsers.iisconfig import SharedConfiguration, parse_redirection_config

    recorded = data.get("shared_configuration")
    if isinstance(recorded, Mapping):
        return SharedConfiguration(enabled=recorded.get("enabled") is True, path=str(recorded.get("path") or ""))
    redirection = data.get("redirection_config")
    if not isinstance(redirection, Mapping):
        return None
    content = decode_blob(redirection.get("content"))
    if not content.strip():
        return None
    return parse_redirection_config(content, str(redirection.get("path") or "redirection.config"))


def _w3c(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.logs import LogAnalyzer, parse_excerpt

    host = str(kw.get("facts", {}).get("computer_name", "")) if kw.get("facts") else ""
    analyzer = LogAnalyzer(window_s=30.0, server=host)
    requests_by_site_id: dict[str, int] = defaultdict(int)
    profiles = _ClientProfiler()
    read: list[tuple[tuple[str, str], str, list[tuple[int, bytes]]]] = []  # ((folder, name), site, lines)
    for f in data.get("files") or []:
        if not isinstance(f, Mapping):
            continue
        site_id = f.get("site_id")
        site_id = int(site_id) if isinstance(site_id, int) or (isinstance(site_id, str) and site_id.isdigit()) \
            else None
        excerpt = decode_blob(f.get("excerpt"))
        # The host classified the 401s (Get-IisW3CLog/2): terminal ones are lines, handshakes are counts.
        analyzer.feed_collected(f, excerpt)
        read.append((_folder_and_name(f), f"W3SVC{site_id}" if site_id is not None else "",
                     list(parse_excerpt(excerpt))))
        profiles.feed_handshakes(f.get("handshakes") or [])
        data_lines = int(f.get("data_lines") or 0)
        requests_by_site_id[f"W3SVC{site_id}" if site_id is not None else "?"] += data_lines
    # An attempt may go on in the next file of the same folder (a daily or hourly rollover between a 401.1
    # leg and the 401.2 after it), so each folder's files are profiled oldest first, in name order as
    # `iisfleet analyze` reads them; the collector lists them newest first.
    for (folder, _name), site_hint, lines in sorted(read, key=lambda item: item[0]):
        profiles.feed(lines, site_hint, folder=folder)
    profiles.close()
    analysis = analyzer.result()
    kw["log"] = log_view_from_analysis(analysis, requests_by_site=requests_by_site_id,
                                       clients=profiles.result(), challenges=profiles.absorbed[2],
                                       legs=profiles.absorbed[1], group_stats=profiles.groups)


def _folder_and_name(entry: Mapping[str, Any]) -> tuple[str, str]:
    """A collected log file's folder and name (Windows paths compare without case)."""
    path = str(entry.get("path") or "").replace("/", "\\").lower()
    folder, _, name = path.rpartition("\\")
    return folder, name


def log_view_from_analysis(analysis: Any, *, requests_by_site: Mapping[str, int] | None = None,
                           clients: Mapping[str, ClientProfile] | None = None,
                           challenges: Mapping[str, int] | None = None,
                           legs: Mapping[str, int] | None = None,
                           group_stats: Mapping[tuple[str, int, int], Any] | None = None) -> LogView:
    """Adapt LOGS' ``LogAnalysis`` (duck-typed) to the diagnosis' :class:`LogView`.

    ``requests_by_site`` (from each file's ``data_lines``) wins over the analysis' own per-site
    counts, which only see the lines the collector kept.
    """
    groups = []
    for g in getattr(analysis, "groups", []) or []:
        samples = tuple(LogSample(source=str(getattr(s, "source", "")), line=int(getattr(s, "line", 0) or 0),
                                  time=str(getattr(s, "time", "") or ""), c_ip=str(getattr(s, "c_ip", "") or ""),
                                  user=str(getattr(s, "user", "") or ""), uri=str(getattr(s, "uri", "") or ""),
                                  user_agent=str(getattr(s, "user_agent", "") or ""))
                        for s in getattr(g, "samples", []) or [])
        win32 = int(g.win32) & 0xFFFFFFFF
        stats = (group_stats or {}).get((str(g.site), int(g.substatus), win32))

        def top(name: str, counter: Any) -> tuple[tuple[str, int], ...]:
            own = getattr(g, name, None)  # per-group lists when LOGS provides them
            if own:
                return tuple((str(v), int(n)) for v, n in own)
            if counter is None:
                return ()
            return tuple(sorted(((str(v), int(n)) for v, n in counter.items()), key=lambda kv: (-kv[1], kv[0]))[:50])

        groups.append(LogGroup(site=str(g.site), substatus=int(g.substatus), win32=win32,
                               count=int(g.count), terminal=int(g.terminal), handshake=int(g.handshake),
                               samples=samples,
                               top_users=top("top_users", stats.users if stats else None),
                               top_clients=top("top_clients", stats.clients if stats else None),
                               top_uris=top("top_uris", stats.uris if stats else None)))
    requests = dict(requests_by_site) if requests_by_site else dict(getattr(analysis, "requests_by_site", {}) or {})
    # Files without a W3SVC folder: fall back to the analyzer's per-site counts for them.
    if "?" in requests:
        requests.pop("?")
        for site, n in (getattr(analysis, "requests_by_site", {}) or {}).items():
            requests.setdefault(site, n)
    return LogView(groups=tuple(groups), requests_by_site=requests,
                   handshake_401=int(getattr(analysis, "status_401_handshake", 0) or 0),
                   by_hour=dict(getattr(analysis, "by_hour", {}) or {}), clients=dict(clients or {}),
                   challenges_before_failure=dict(challenges or {}), legs_before_failure=dict(legs or {}))


@dataclass
class _GroupStats:
    users: Counter = field(default_factory=Counter)
    clients: Counter = field(default_factory=Counter)
    uris: Counter = field(default_factory=Counter)


@dataclass
class _Pending:
    """A round of an attempt (401.2 challenge, or 401.1 SEC_E_NO_CREDENTIALS leg) waiting for its client's
    next line."""

    when: float | None
    site: str
    after_success: bool  # the same client/URL succeeded just before (a line written out of order)
    substatus: int = 2   # 2 = the anonymous challenge, 1 = a Negotiate/NTLM continuation leg


@dataclass
class _Attempts:
    """Where the attempts of one log folder stand between its files: keyed by (client, agent, URL)."""

    pending: dict[tuple[str, str, str], _Pending] = field(default_factory=dict)
    counted: dict[tuple[str, str, str], list[_Pending]] = field(default_factory=dict)
    last_ok: dict[tuple[str, str, str], float | None] = field(default_factory=dict)


class _ClientProfiler:
    """Facts LOGS' 401 groups do not carry, read from the kept excerpt lines.

    * per (site, substatus, win32): the users, clients and URLs on its rows (LOGS reports these only
      for the whole analysis);
    * per client address: who authenticated from it and with which user agents (the NTLM-through-proxy
      signal: many users or browsers behind one address);
    * per site, how many terminal ``401.2`` challenges and ``401.1`` SEC_E_NO_CREDENTIALS legs explain
      nothing by themselves (``absorbed[2]`` and ``absorbed[1]``): a round of an attempt whose next line
      (same client, agent and URL, within the window) is a later 401 of that attempt (a leg or a
      rejection after a challenge; a rejection or a restarted 401.2 after a leg: the attempt is
      diagnosed under that 401), and rounds whose success was logged a moment *before* them (lines of
      one second are not strictly ordered). A leg nothing follows stays terminal: the attempt failed
      there (a rejected Kerberos AP-REQ, an abandoned continuation), as the log analysis counts it.

    Columns are read by the ``#Fields`` header in force. Bounded: at most MAX_CLIENT_PROFILES addresses
    and MAX_USERS_PER_CLIENT users/agents each.
    """

    #: how far back a success may be logged before its own challenge line (seconds)
    SLACK_S = 5.0

    def __init__(self, window_s: float = 30.0) -> None:
        self._users: dict[str, set[str]] = {}
        self._agents: dict[str, set[str]] = {}
        self._requests: dict[str, int] = defaultdict(int)
        self.window_s = window_s
        #: substatus of the round (2 challenge, 1 leg) → site → rounds absorbed into a later failure
        self.absorbed: dict[int, dict[str, int]] = {1: defaultdict(int), 2: defaultdict(int)}
        self.groups: dict[tuple[str, int, int], _GroupStats] = defaultdict(_GroupStats)
        self._folders: dict[str, _Attempts] = {}

    def feed_handshakes(self, groups: Iterable[Any]) -> None:
        """Handshake 401s the host only counted (Get-IisW3CLog/2): their clients join the per-group stats."""
        for group in groups:
            if not isinstance(group, Mapping):
                continue
            try:
                key = (str(group.get("site") or ""), int(str(group.get("substatus") or 0)),
                       int(str(group.get("win32") or 0)) & 0xFFFFFFFF)
            except ValueError:
                continue
            stats = self.groups[key]
            for client in group.get("clients") or []:
                if isinstance(client, Mapping) and isinstance(client.get("count"), int):
                    stats.clients[str(client.get("ip") or "")] += int(client["count"])

    def feed(self, lines: Iterable[tuple[int, bytes]], site_hint: str, *, folder: str) -> None:
        """One file's kept lines, in line order. Files of the same ``folder`` (fed oldest first) continue
        each other's attempts; call :meth:`close` after the last file."""
        fields: list[str] = []
        state = self._folders.setdefault(folder, _Attempts())
        pending, counted, last_ok = state.pending, state.counted, state.last_ok
        absorbed = self.absorbed
        finish = self._finish

        for _, raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("#"):
                if line.startswith("#Fields:"):
                    fields = line[len("#Fields:"):].split()
                continue
            if not fields:
                continue
            values = line.split(" ")
            if len(values) != len(fields):
                continue
            row = dict(zip(fields, values))
            ip = row.get("c-ip", "")
            if not ip:
                continue
            agent = row.get("cs(User-Agent)", "-")
            uri = row.get("cs-uri-stem", "")
            user = row.get("cs-username", "-")
            key = (ip, agent, uri)
            when = _seconds(row.get("date", ""), row.get("time", ""))
            status, sub, win32 = row.get("sc-status", ""), row.get("sc-substatus", ""), row.get("sc-win32-status", "")
            site = row.get("s-sitename") or site_hint
            ok = status.isdigit() and int(status) < 400
            leg = status == "401" and sub == "1" and win32 == _NO_CREDENTIALS
            previous = pending.pop(key, None)
            if previous is not None:
                in_window = previous.when is None or when is None or when - previous.when <= self.window_s
                # A later 401 of the same attempt takes the round over: a challenge is followed by a leg
                # or a rejection, a leg by a rejection or a restarted handshake (a fresh 401.2, as when an
                # intermediary moves the conversation to another connection). Two challenges or two legs
                # in a row are separate attempts.
                continues = status == "401" and sub != str(previous.substatus) or (
                    status == "401" and previous.substatus == 1 and sub == "1" and not leg)
                if in_window and continues:
                    absorbed[previous.substatus][previous.site] += 1
                    counted.setdefault(key, []).append(previous)
                elif not (in_window and ok):
                    finish(previous)
            done = counted.pop(key, None) if ok else None
            for round_ in done or ():
                # the client got in after all: LOGS calls that round a handshake, so do not absorb it
                if round_.when is None or when is None or when - round_.when <= self.window_s:
                    absorbed[round_.substatus][round_.site] -= 1
            if ok:
                last_ok[key] = when
            if status == "401":
                try:
                    stats = self.groups[(site, int(sub or 0), int(win32 or 0) & 0xFFFFFFFF)]
                except ValueError:
                    stats = None
                if stats is not None:
                    stats.users[user] += 1
                    stats.clients[ip] += 1
                    stats.uris[uri] += 1
                if sub == "2" or leg:
                    before = last_ok.get(key, -1.0)
                    after_success = key in last_ok and (before is None or when is None
                                                        or 0 <= when - before <= self.SLACK_S)
                    pending[key] = _Pending(when, site, after_success, 2 if sub == "2" else 1)
            self._profile(ip, user, agent)

    def close(self) -> None:
        """The last file is in: rounds still waiting for a next line ended there."""
        for state in self._folders.values():
            for p in state.pending.values():
                self._finish(p)
        self._folders.clear()

    def _finish(self, p: _Pending) -> None:
        if p.after_success:
            self.absorbed[p.substatus][p.site] += 1

    def _profile(self, ip: str, user: str, agent: str) -> None:
        if ip not in self._users and len(self._users) >= MAX_CLIENT_PROFILES:
            return
        users = self._users.setdefault(ip, set())
        agents = self._agents.setdefault(ip, set())
        self._requests[ip] += 1
        if user not in ("", "-") and len(users) < MAX_USERS_PER_CLIENT:
            users.add(user)
        if agent not in ("", "-") and len(agents) < MAX_USERS_PER_CLIENT:
            agents.add(agent)

    def result(self) -> dict[str, ClientProfile]:
        return {ip: ClientProfile(ip, frozenset(self._users[ip]), frozenset(self._agents[ip]), self._requests[ip])
                for ip in self._users}


_NO_CREDENTIALS = "2148074254"


def _seconds(date: str, time: str) -> float | None:
    try:
        stamp = dt.datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.timezone.utc).timestamp()


def _freb(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.parsers.freb import parse_freb

    traces = []
    problems = []
    for f in data.get("files") or []:
        path = str(f.get("path") or "fr.xml")
        try:
            traces.append(parse_freb(decode_blob(f.get("content")), path))
        except Exception as exc:  # noqa: BLE001 - one bad trace must not hide the others
            problems.append(f"{path}: {exc}")
    kw["freb"] = tuple(traces)
    if problems:
        missing.setdefault("freb", "unreadable traces: " + "; ".join(problems[:3]))


def _lenient_sddl(text: str, where: str, problems: list[str]) -> Any:
    """Parse an SDDL; if only the owner/group part is unreadable, parse the DACL alone (all that access
    needs). None (and a problem noted) when the DACL itself is unreadable."""
    from toolkit.parsers.sddl import parse_sddl

    try:
        return parse_sddl(text)
    except Exception as first:  # noqa: BLE001 - untrusted input
        # Owner and group come before the DACL ("O:BAG:DUD:..."): retry from each "D:" that may start it.
        start = text.find("D:")
        while 0 < start:
            try:
                return parse_sddl(text[start:])
            except Exception:  # noqa: BLE001
                start = text.find("D:", start + 1)
        problems.append(f"{where}: {first}"[:200])
        return None


def _acl(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    paths = []
    problems: list[str] = []
    for p in data.get("paths") or []:
        where = str(p.get("expanded_path") or p.get("physical_path") or "?")
        sddl = p.get("sddl")
        share = p.get("share") or None
        share_sd = _lenient_sddl(share["sddl"], f"share of {where}", problems) if share and share.get("sddl") \
            else None
        paths.append(ContentPath(site=str(p.get("site") or ""), application_path=str(p.get("application_path") or "/"),
                                 virtual_path=str(p.get("virtual_path") or "/"),
                                 physical_path=str(p.get("physical_path") or ""),
                                 expanded_path=str(p.get("expanded_path") or p.get("physical_path") or ""),
                                 exists=bool(p.get("exists", True)), is_unc=bool(p.get("is_unc", False)),
                                 sd=_lenient_sddl(sddl, where, problems) if sddl else None,
                                 share_name=f"\\\\{share.get('server', '')}\\{share.get('name', '')}" if share else "",
                                 share_sd=share_sd))
    kw["content"] = tuple(paths)
    if problems:
        missing.setdefault("acl", "unreadable security descriptors: " + "; ".join(problems[:3]))


def _rights(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    kw["groups"] = tuple(g for g in data.get("groups") or [] if isinstance(g, Mapping))
    kw["users"] = tuple(u for u in data.get("users") or [] if isinstance(u, Mapping))
    blob = data.get("secedit_inf")
    if not blob:
        missing.setdefault("rights", "Get-LocalUserRight returned no secedit export")
        return
    from toolkit.parsers.secedit import parse_secedit

    kw["rights"] = parse_secedit(decode_blob(blob), "secedit.inf")


def _spn(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.parsers.setspn import parse_setspn

    from toolkit.identity import computer_name_of, machine_account, network_account

    computer = computer_name_of(kw.get("facts"), str(data.get("machine_account") or ""))
    kw["machine_account"] = str(data.get("machine_account") or "") or machine_account(computer)
    queries = []
    records: list[SpnRecord] = []
    for q in data.get("queries") or []:
        account = str(q.get("account") or "")
        if str(q.get("source") or "") == "machine" or network_account(account, computer) == kw["machine_account"]:
            # setspn is given %COMPUTERNAME% (no "$"): the records belong to the computer account WEB01$.
            account = kw["machine_account"] or account
        queries.append((account, str(q.get("source") or "")))
        if q.get("exit_code") not in (0, None):
            missing.setdefault("spn", f"setspn -L {account} exited with {q.get('exit_code')}")
            continue
        records.extend(parse_setspn(str(q.get("output") or ""), account))
    kw["spn_queries"] = tuple(queries)
    kw["spns"] = tuple(records)


def _events(data: Mapping[str, Any], kw: dict[str, Any], missing: dict[str, str]) -> None:
    from toolkit.parsers.events import parse_event_log_states, parse_logon_failures

    events = [e for e in data.get("events") or [] if isinstance(e, Mapping)]
    kw["logon_failures"] = tuple(parse_logon_failures([e for e in events if int(e.get("id") or 0) == 4625]))
    kw["events"] = tuple(e for e in events if int(e.get("id") or 0) != 4625)
    kw["event_logs"] = tuple(parse_event_log_states(data.get("logs") or []))
    coaf = data.get("crash_on_audit_fail")
    kw["crash_on_audit_fail"] = int(coaf) if coaf is not None else None


_BUILDERS = {
    "Get-HostFact": _facts,
    "Get-IisConfig": _config,
    "Get-IisW3CLog": _w3c,
    "Get-IisFailedRequestTrace": _freb,
    "Get-IisContentAcl": _acl,
    "Get-LocalUserRight": _rights,
    "Get-IisSpn": _spn,
    "Get-AuthEventLog": _events,
}


def evidence_from_run(run: Any) -> dict[str, HostEvidence]:
    """Duck-typed over RUNNER's ``RunData``: ``.hosts[name]`` with ``.envelopes``, ``.status``, ``.error``."""
    out: dict[str, HostEvidence] = {}
    for name in sorted(run.hosts):
        record = run.hosts[name]
        error = getattr(record, "error", None)
        if isinstance(error, Mapping):
            error = str(error.get("message") or error.get("category") or "")
        out[name] = build_host_evidence(name, getattr(record, "envelopes", {}) or {},
                                        status=str(getattr(record, "status", "ok") or "ok"),
                                        error=error or None, steps=getattr(record, "steps", ()) or ())
    return out


def terminal_groups(host: HostEvidence) -> list[LogGroup]:
    """Groups with terminal 401s that can be findings.

    Terminal is what the log analysis says (no success from that client within the window), so a
    SEC_E_NO_CREDENTIALS leg nothing followed is terminal here too. Left out are only the rounds of an
    attempt that then failed with a later 401 (same client and URL): the anonymous 401.2 challenge and
    the 401.1 leg before a rejected answer belong to that failure, diagnosed under its own substatus.
    Every terminal row is therefore either in a group returned here or in ``absorbed_rounds``.
    """
    absorb = {2: dict(host.log.challenges_before_failure), 1: dict(host.log.legs_before_failure)}
    out = []
    for g in sorted(host.log.groups, key=lambda g: (g.site, g.substatus, -g.terminal, g.win32)):
        if g.terminal <= 0:
            continue
        rounds = absorb[2] if g.substatus == 2 else absorb[1] if (g.substatus, g.win32) == (1, HANDSHAKE_WIN32) \
            else {}
        if rounds.get(g.site, 0) > 0:
            taken = min(rounds[g.site], g.terminal)
            rounds[g.site] -= taken
            if taken == g.terminal:
                continue
            g = replace(g, terminal=g.terminal - taken)
        out.append(g)
    return out


def absorbed_rounds(host: HostEvidence) -> int:
    """Terminal rows left out of :func:`terminal_groups` as rounds of an attempt that failed later."""
    return host.log.terminal_401 - sum(g.terminal for g in terminal_groups(host))
