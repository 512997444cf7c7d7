"""Host health problems as findings, whatever the logs say.

A health sweep reads no logs, yet a server whose Security log is full under CrashOnAuditFail, or whose
clock is past Kerberos' tolerance, will refuse logons as soon as traffic arrives. These problems are
findings with a severity (substatus ``host``: no 401 had to be logged), next to the 401 findings, so a
report never says "findings: 0" for such a fleet. A host whose 401s already produced the matching 401
finding (``security-log-full``, ``clock-skew``, a Kerberos SPN cause) does not get it twice.

Evidence used (all already collected): ``crash_on_audit_fail``, the Security log's size/retention and
1104 events (Get-AuthEventLog), each host's clock (Get-HostFact ``utc_now``) against the fleet, SPN
registrations (Get-IisSpn), application pools' ``autoStart`` (Get-IisConfig), and the HTTPS binding
certificates (Get-IisCertificate; the rules are in ``toolkit/diagnose/rules/certificates.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace

from toolkit.diagnose.evidence import HostEvidence
from toolkit.diagnose.model import Confidence, EvidenceItem, EvidenceSource, Finding, Fix, SpnDuplicate, SpnMismatch
from toolkit.diagnose.rules.certificates import certificate_findings
from toolkit.diagnose.rules.kerberos import host_names, spn_key

#: Kerberos' default maximum tolerance for computer clock synchronization (facts.md): past it, tickets fail.
KERBEROS_SKEW_S = 300.0
HEALTH_SUBSTATUS = "host"

#: health cause → the 401 cause that already reports it for a host
_COVERED_BY = {
    "audit-fail-crash-risk": {"security-log-full"},
    "host-clock-skew": {"clock-skew"},
    "spn-duplicate": {"kerberos-spn-duplicate"},
    "spn-mismatch": {"kerberos-kernel-mode-mismatch", "kerberos-spn-missing", "kerberos-spn-misplaced"},
}


def _finding(cause: str, title: str, severity: str, hosts: Sequence[str], level: str, reason: str,
             evidence: Sequence[EvidenceItem], explanation: str, fix: Fix, site: str = "") -> Finding:
    return Finding(cause=cause, title=title, substatus=HEALTH_SUBSTATUS, severity=severity,  # type: ignore[arg-type]
                   confidence=Confidence(level, reason), hosts=tuple(sorted(hosts)), site=site, scope="",  # type: ignore[arg-type]
                   terminal_401=0, evidence=tuple(evidence), explanation=explanation, fix=fix)


def _security_log(host: HostEvidence):
    return next((log for log in host.event_logs if log.name.lower() == "security"), None)


def audit_fail_risk(host: HostEvidence) -> Finding | None:
    """CrashOnAuditFail=2 (it fired: only administrators log on), or 1 with a Security log that is full or
    does not overwrite (it will fire)."""
    coaf = host.crash_on_audit_fail
    if coaf not in (1, 2):
        return None
    log = _security_log(host)
    full = bool(log and log.is_full)
    full_events = [e for e in host.events if str(e.get("id")) == "1104"]
    keeps = bool(log and log.retention in ("manual", "archive"))
    if coaf == 1 and not (full or full_events or keeps):
        return None
    evidence = [EvidenceItem("host", host.name, f"CrashOnAuditFail={coaf}",
                             EvidenceSource(file="HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa",
                                            element="CrashOnAuditFail"))]
    if log is not None:
        evidence.append(EvidenceItem("event", host.name, f"Security log {log.file_size_bytes}/{log.max_size_bytes} "
                                                         f"bytes, full={log.is_full}, retention={log.retention or '?'}"))
    for event in full_events[:2]:
        evidence.append(EvidenceItem("event", host.name, f"1104 The security log is now full ({event.get('time_utc')})",
                                     EvidenceSource(file=str(event.get("log") or "Security"),
                                                    record_id=event.get("record_id"))))
    if coaf == 2 or full or full_events:
        severity, title = "critical", "Security log full under CrashOnAuditFail: non-admin logons are blocked"
        level = "high" if coaf == 2 or full_events else "medium"
        story = ("has fired (CrashOnAuditFail=2): only administrators can log on" if coaf == 2 else
                 "is on and the Security log is full: the next audit failure stops non-admin logons")
    else:
        severity, title = "high", "CrashOnAuditFail with a Security log that never overwrites: logons will stop"
        level = "medium"
        story = (f"is on and the Security log's retention is '{log.retention}'"  # type: ignore[union-attr]
                 f": once it fills, non-admin logons stop")
    explanation = (f"The policy 'Audit: Shut down system immediately if unable to log security audits' {story}. "
                   f"IIS then cannot log on IUSR, the anonymous account or any user, and every request fails "
                   f"with 401.1. Archive and clear the Security log, set CrashOnAuditFail back to 1, and give "
                   f"the log room (a larger size, or overwrite as needed).")
    fix = Fix("wevtutil epl Security C:\\Windows\\Temp\\Security-backup.evtx; wevtutil cl Security; "
              "wevtutil sl Security /rt:false; "
              "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa -Name CrashOnAuditFail -Value 1",
              notes="Keep the exported log if audits matter; /rt:false lets the log overwrite old events. "
                    "iisfleet never runs this.")
    return _finding("audit-fail-crash-risk", title, severity, [host.name], level,
                    f"CrashOnAuditFail={coaf}" + ("; Security log full" if full or full_events else
                                                  f"; retention {log.retention}" if log else ""),  # type: ignore[union-attr]
                    evidence, explanation, fix)


def clock_skew(hosts: Mapping[str, HostEvidence], offsets: Mapping[str, float | None], reference: str) -> list[Finding]:
    out = []
    for name, offset in sorted(offsets.items()):
        if offset is None or abs(offset) <= KERBEROS_SKEW_S:
            continue
        facts = hosts[name].facts or {}
        way = "ahead of" if offset > 0 else "behind"
        evidence = [EvidenceItem("host", name, f"utc_now {facts.get('utc_now')} is {abs(offset):.0f} s {way} the "
                                               f"{reference}")]
        explanation = (f"{name}'s clock is {abs(offset) / 60:.1f} minutes {way} the {reference}, beyond Kerberos' "
                       f"5-minute tolerance: Kerberos tickets to and from this server are refused "
                       f"(KRB_AP_ERR_SKEW), so Windows authentication fails with 401.1 or falls back to NTLM. "
                       f"Make the server sync with the domain hierarchy again.")
        fix = Fix("w32tm /config /syncfromflags:domhier /update; w32tm /resync /rediscover; w32tm /query /status",
                  shell="cmd", notes="iisfleet never runs this.")
        out.append(_finding("host-clock-skew", f"Clock {abs(offset) / 60:.0f} min {way} the fleet", "high", [name],
                            "high" if reference == "fleet median" else "medium",
                            f"{abs(offset):.0f} s off the {reference}, Kerberos allows {KERBEROS_SKEW_S:.0f} s",
                            evidence, explanation, fix))
    return out


def _serving(hosts: Mapping[str, HostEvidence], spn: str) -> list[str]:
    """The hosts that answer to the name in an HTTP SPN (computer name, FQDN or a host header)."""
    wanted = spn_key(spn)
    return sorted(name for name, host in hosts.items()
                  if any(spn_key(f"http/{n}") == wanted for n in host_names(host)))


def spn_problems(hosts: Mapping[str, HostEvidence], duplicates: Sequence[SpnDuplicate],
                 mismatches: Sequence[SpnMismatch]) -> list[Finding]:
    out = []
    for dup in duplicates:
        # The problem belongs to the servers clients reach by that name; the hosts whose setspn answers
        # merely listed it (a shared account) are only where it was seen.
        affected = _serving(hosts, dup.spn) or list(dup.hosts)
        if not affected:
            continue
        evidence = [EvidenceItem("spn", host, f"{dup.spn} is registered on {', '.join(dup.accounts)}"
                                 + (f" (seen in setspn -L on {', '.join(dup.hosts)})" if dup.hosts else ""),
                                 EvidenceSource(file="setspn -L")) for host in affected]
        explanation = (f"The service principal name {dup.spn} is registered on {len(dup.accounts)} accounts "
                       f"({', '.join(dup.accounts)}). The KDC cannot tell which key to issue tickets for, so "
                       f"Kerberos logons to that name fail (401.1) or fall back to NTLM. Keep it on the account "
                       f"the site decrypts with and remove it from the others.")
        fix = Fix(f"setspn -Q {dup.spn}; setspn -D {dup.spn} <the account that should not hold it>", shell="cmd",
                  notes="setspn -X lists every duplicate in the domain. iisfleet never runs this.")
        out.append(_finding("spn-duplicate", f"Duplicate SPN {dup.spn}", "high", affected, "high",
                            f"setspn -L answers list {dup.spn} on {len(dup.accounts)} accounts", evidence,
                            explanation, fix))
    for m in mismatches:
        evidence = [EvidenceItem("spn", m.host, f"{m.spn} on {m.account}: {m.problem}")]
        out.append(_finding("spn-mismatch", f"SPN {m.spn} does not match the account that decrypts tickets",
                            "medium", [m.host], "medium", m.problem, evidence,
                            f"On {m.host}, site {m.site}: {m.problem}. Kerberos logons to {m.spn} fail until the SPN "
                            f"is on the account that decrypts (or kernel mode and useAppPoolCredentials agree).",
                            Fix(f"setspn -L {m.account}", shell="cmd",
                                notes="Compare with the site's useKernelMode/useAppPoolCredentials. "
                                      "iisfleet never runs this."), site=m.site))
    return out


def pools_not_starting(host: HostEvidence) -> Finding | None:
    """Application pools serving sites with autoStart=false: stopped after every restart until someone
    starts them (requests then fail with 503, and sweeps see a silent site)."""
    if host.config is None:
        return None
    used = {app.app_pool.lower(): site.name for site in host.config.sites for app in site.applications}
    pools = [p for p in host.config.app_pools if not p.auto_start and p.name.lower() in used]
    if not pools:
        return None
    evidence = [EvidenceItem("config", host.name, f"application pool {p.name} autoStart=false "
                                                  f"(serves {used[p.name.lower()]})",
                             EvidenceSource(file=p.source.file, line=p.source.line) if p.source else None)
                for p in pools]
    names = ", ".join(p.name for p in pools)
    return _finding("app-pool-not-auto-start", f"Application pools do not start with the server ({names})", "low",
                    [host.name], "medium", "autoStart=false in applicationHost.config (the running state is not collected)",
                    evidence,
                    f"The application pools {names} serve sites but are set not to start automatically: after a "
                    f"restart of the server or of WAS they stay stopped and their sites answer 503 until someone "
                    f"starts them. iisfleet reads the configuration, not the running state.",
                    Fix("; ".join(f"Set-ItemProperty IIS:\\AppPools\\{p.name} -Name autoStart -Value $true"
                                  for p in pools), notes="Needs the WebAdministration module. iisfleet never runs this."))


def health_findings(hosts: Mapping[str, HostEvidence], offsets: Mapping[str, float | None], reference: str,
                    duplicates: Sequence[SpnDuplicate], mismatches: Sequence[SpnMismatch],
                    existing: Sequence[Finding], collected_utc: dt.datetime | None = None) -> list[Finding]:
    """Every host health finding, less the hosts a 401 finding already covers for the same problem.
    ``collected_utc`` is the run's "now" (its reference time, else when it collected): certificate expiry is
    judged as of it."""
    found: list[Finding] = []
    for name in sorted(hosts):
        for finding in (audit_fail_risk(hosts[name]), pools_not_starting(hosts[name])):
            if finding is not None:
                found.append(finding)
    found += clock_skew(hosts, offsets, reference)
    found += spn_problems(hosts, duplicates, mismatches)
    found += certificate_findings(hosts, collected_utc)
    out = []
    for finding in found:
        covered = {h for f in existing if f.cause in _COVERED_BY.get(finding.cause, ()) for h in f.hosts}
        left = tuple(h for h in finding.hosts if h not in covered)
        if left:
            out.append(finding if left == finding.hosts else
                       replace(finding, hosts=left, evidence=tuple(e for e in finding.evidence if e.host in left)))
    return out
