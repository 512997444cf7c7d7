"""HTTPS binding certificates as host health findings (Get-IisCertificate + Get-IisConfig).

Pure: the SSL bindings HTTP.sys holds, the certificates they name and the sites' ``<binding protocol="https">``
elements in, findings out. Each finding cites the site's ``<binding>`` (file, line) and the certificate
(store, thumbprint, names, validity). Which SSL record serves a site's binding follows HTTP.sys: a binding with
``sslFlags`` 1 (SNI) uses the ``hostname:port`` record, 2 (Centralized Certificate Store) the CCS port record
(not judged: the certificate is a .pfx on the CCS share), any other the ``IP:port`` record, else
``0.0.0.0:port``.

| cause | severity | when |
|---|---|---|
| ``certificate-expired`` | high | NotAfter before the reference time |
| ``certificate-not-yet-valid`` | high | NotBefore after the reference time |
| ``certificate-expiring`` | medium / low | NotAfter within ``EXPIRING_MEDIUM_DAYS`` (30) / ``EXPIRING_LOW_DAYS`` (60) |
| ``certificate-name-mismatch`` | high | a host name the site answers to (its https host header, or the SNI record's name) is not covered by the SAN dNSNames (the CN only when there is no SAN); wildcards per RFC 6125: ``*`` as the whole left-most label, one label |
| ``certificate-missing`` | high | the SSL record names a thumbprint the LocalMachine store it names does not hold |
| ``certificate-no-private-key`` | high | the store holds the certificate without its private key |
| ``certificate-not-server-auth`` | medium | an EKU extension without Server Authentication (1.3.6.1.5.5.7.3.1) or anyExtendedKeyUsage |
| ``https-binding-without-certificate`` | high | a site's https binding has no SSL record at all |

The reference time is the collection time (the controller's clock when the run ended), else the time the
host stamped on the answer; dates judged against the host's own clock are one confidence notch lower.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from toolkit.diagnose.model import Confidence, EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.parsers.certificates import SslBinding
from toolkit.parsers.types import Binding

EXPIRING_MEDIUM_DAYS = 30
EXPIRING_LOW_DAYS = 60
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
ANY_PURPOSE = "2.5.29.37.0"
SNI_FLAG = 1
CCS_FLAG = 2
SUBSTATUS = "host"


# --- names (RFC 6125) ------------------------------------------------------------------------------------

def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower()


def name_matches(presented: str, host: str) -> bool:
    """Does one certificate name cover ``host``? A wildcard only as the whole left-most label (``*.contoso.com``),
    matching exactly one label, and never directly under a single label (``*.com``)."""
    pattern, wanted = _normal(presented), _normal(host)
    if not pattern or not wanted:
        return False
    if pattern == wanted:
        return True
    labels = pattern.split(".")
    if labels[0] != "*" or len(labels) < 3 or "*" in ".".join(labels[1:]):
        return False
    head, _, rest = wanted.partition(".")
    return bool(head) and rest == ".".join(labels[1:])


def names_covering(dns_names: tuple[str, ...], common_name: str) -> tuple[str, ...]:
    """The names a client checks: the SAN dNSNames when there are any, else the subject's CN (RFC 6125 6.4.4)."""
    return dns_names if dns_names else ((common_name,) if common_name else ())


def covers(dns_names: tuple[str, ...], common_name: str, host: str) -> bool:
    return any(name_matches(n, host) for n in names_covering(dns_names, common_name))


# --- which SSL record serves a site binding --------------------------------------------------------------

@dataclass(frozen=True)
class SiteBinding:
    site: str
    binding: Binding
    address: str  # "*" or an IP
    port: int
    host_header: str


def split_binding_information(info: str) -> tuple[str, str, str]:
    """``ip:port:host`` (``[v6]:port:host`` for IPv6; ``*`` for every address) → (address, port, host)."""
    if info.startswith("["):
        address, _, rest = info[1:].partition("]")
        rest = rest[1:]
    else:
        address, _, rest = info.partition(":")
    port, _, host = rest.partition(":")
    return address or "*", port, host


def https_bindings(config: object) -> list[SiteBinding]:
    out = []
    for site in getattr(config, "sites", ()) or ():
        for binding in site.bindings:
            if binding.protocol.lower() != "https":
                continue
            address, port, host = split_binding_information(binding.binding_information)
            if not port.isdigit():
                continue
            out.append(SiteBinding(site.name, binding, address, int(port), host))
    return out


def serving_record(binding: SiteBinding, records: list[SslBinding]) -> SslBinding | None:
    if binding.binding.ssl_flags & CCS_FLAG:
        return next((r for r in records if r.kind == "ccs" and r.port == binding.port), None)
    if binding.binding.ssl_flags & SNI_FLAG and binding.host_header:
        return next((r for r in records if r.kind == "sni" and r.port == binding.port
                     and _normal(r.host_name) == _normal(binding.host_header)), None)
    ip_records = [r for r in records if r.kind == "ip" and r.port == binding.port]
    if binding.address not in ("*", "0.0.0.0"):
        exact = next((r for r in ip_records if r.address == binding.address), None)
        if exact is not None:
            return exact
    return next((r for r in ip_records if r.address in ("0.0.0.0", "::")), None)


# --- findings --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Problem:
    cause: str
    severity: str
    title: str
    reason: str
    explanation: str
    fix: Fix


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rebind_fix(site: str, binding: SiteBinding | None, record: SslBinding, why: str) -> Fix:
    host = binding.host_header if binding else record.host_name
    select = (f"Get-WebBinding -Name {_quote(site)} -Protocol https -Port {record.port}"
              + (f" -HostHeader {_quote(host)}" if host else "")) if site else ""
    find = ("Get-ChildItem Cert:\\LocalMachine\\My | Where-Object { $_.NotAfter -gt (Get-Date) -and $_.HasPrivateKey"
            + (f" -and $_.DnsNameList.Unicode -contains {_quote(host)}" if host else "") + " }")
    command = find + (f"; ({select}).AddSslCertificate('<new thumbprint>', 'My')" if select else "")
    return Fix(command, notes=f"{why} The first command lists certificates that would fit; the second binds the one "
                              "you choose (WebAdministration module). iisfleet never runs this.")


def _problems(record: SslBinding, names: list[str], reference: dt.datetime | None, site: str,
              binding: SiteBinding | None) -> list[_Problem]:
    cert = record.certificate
    where = f"LocalMachine\\{record.store}"
    out: list[_Problem] = []
    if record.status == "not-found":
        out.append(_Problem(
            "certificate-missing", "high", f"HTTPS binding {record.endpoint} names a certificate that is not in {where}",
            f"HTTP.sys's SSL record for {record.endpoint} names {record.certificate_hash}, which {where} does not hold",
            f"HTTP.sys is configured to present certificate {record.certificate_hash} from {where} on {record.endpoint}, "
            f"but that store does not hold it (deleted, or renewed and removed without rebinding). TLS handshakes "
            f"on that endpoint fail, so browsers show a connection error before any HTTP status.",
            _rebind_fix(site, binding, record, "Import the certificate with its private key into LocalMachine\\My, "
                                               "or bind another.")))
        return out
    if cert is None:
        return out
    if reference is not None and cert.not_after is not None:
        days = (cert.not_after - reference).total_seconds() / 86400
        if days < 0:
            out.append(_Problem(
                "certificate-expired", "high", f"Certificate for {record.endpoint} expired {-days:.0f} days ago",
                f"NotAfter {cert.not_after:%Y-%m-%d %H:%M}Z is before {reference:%Y-%m-%d %H:%M}Z",
                f"The certificate HTTP.sys presents on {record.endpoint} ({cert.subject_cn or cert.subject}, "
                f"{cert.thumbprint}) expired on {cert.not_after:%Y-%m-%d}. Browsers refuse the connection or show "
                f"a certificate error; API clients fail the TLS handshake.",
                _rebind_fix(site, binding, record, "Renew the certificate, then bind the renewed one.")))
        elif days <= EXPIRING_LOW_DAYS:
            severity = "medium" if days <= EXPIRING_MEDIUM_DAYS else "low"
            out.append(_Problem(
                "certificate-expiring", severity, f"Certificate for {record.endpoint} expires in {days:.0f} days",
                f"NotAfter {cert.not_after:%Y-%m-%d %H:%M}Z is {days:.1f} days after {reference:%Y-%m-%d %H:%M}Z "
                f"(medium within {EXPIRING_MEDIUM_DAYS} days, low within {EXPIRING_LOW_DAYS})",
                f"The certificate HTTP.sys presents on {record.endpoint} ({cert.subject_cn or cert.subject}, "
                f"{cert.thumbprint}) expires on {cert.not_after:%Y-%m-%d}. After that date clients refuse the "
                f"connection. Renew it and bind the renewed certificate before then.",
                _rebind_fix(site, binding, record, "Renew the certificate, then bind the renewed one.")))
    if reference is not None and cert.not_before is not None and cert.not_before > reference:
        out.append(_Problem(
            "certificate-not-yet-valid", "high", f"Certificate for {record.endpoint} is not valid yet",
            f"NotBefore {cert.not_before:%Y-%m-%d %H:%M}Z is after {reference:%Y-%m-%d %H:%M}Z",
            f"The certificate on {record.endpoint} ({cert.thumbprint}) becomes valid only on "
            f"{cert.not_before:%Y-%m-%d %H:%M}Z: clients reject it until then (or the server's clock is wrong).",
            _rebind_fix(site, binding, record, "Bind a certificate that is valid now, or correct the clock.")))
    uncovered = [n for n in names if not covers(cert.dns_names, cert.subject_cn, n)]
    if uncovered:
        offered = names_covering(cert.dns_names, cert.subject_cn)
        source = "subject alternative names" if cert.dns_names else "subject CN (the certificate has no SAN)"
        out.append(_Problem(
            "certificate-name-mismatch", "high",
            f"Certificate for {record.endpoint} does not cover {', '.join(uncovered)}",
            f"{', '.join(uncovered)} not in the {source}: {', '.join(offered) or 'none'}",
            f"Clients reach this site as {', '.join(uncovered)}, but the certificate HTTP.sys presents "
            f"({cert.thumbprint}) is for {', '.join(offered) or 'no name at all'} (its {source}). Browsers show a "
            f"name mismatch error and API clients refuse the connection. A wildcard covers exactly one label.",
            _rebind_fix(site, binding, record, "Bind a certificate whose SAN lists the host name.")))
    if not cert.has_private_key:
        out.append(_Problem(
            "certificate-no-private-key", "high", f"No private key for the certificate on {record.endpoint}",
            f"{where} holds {cert.thumbprint} without its private key",
            f"The certificate on {record.endpoint} ({cert.thumbprint}) is in {where} without its private key "
            f"(imported from a .cer instead of a .pfx). HTTP.sys cannot complete a TLS handshake with it.",
            _rebind_fix(site, binding, record, "Import the .pfx (certificate with its key), or bind another.")))
    eku = cert.enhanced_key_usage
    if eku is not None and SERVER_AUTH not in eku and ANY_PURPOSE not in eku:
        out.append(_Problem(
            "certificate-not-server-auth", "medium", f"Certificate for {record.endpoint} is not for server authentication",
            f"enhanced key usage {', '.join(eku) or '(empty)'} lacks Server Authentication ({SERVER_AUTH})",
            f"The certificate on {record.endpoint} ({cert.thumbprint}) restricts its use to {', '.join(eku) or 'nothing'}; "
            f"TLS clients that check the purpose refuse it for a web server.",
            _rebind_fix(site, binding, record, "Bind a certificate issued for Server Authentication.")))
    return out


def _evidence(host: str, record: SslBinding, binding: SiteBinding | None) -> list[EvidenceItem]:
    items = []
    if binding is not None:
        src = binding.binding.source
        items.append(EvidenceItem("config", host, f"site {binding.site}: <binding protocol=\"https\" bindingInformation="
                                                  f"\"{binding.binding.binding_information}\" sslFlags=\"{binding.binding.ssl_flags}\">",
                                  EvidenceSource(file=src.file, line=src.line, element=src.element) if src else None))
    items.append(EvidenceItem("certificate", host, f"HTTP.sys {record.kind} SSL binding {record.endpoint}: certificate "
                                                   f"{record.certificate_hash or '(none)'} from LocalMachine\\{record.store}"
                                                   f" ({record.status})",
                              EvidenceSource(file="HTTP.sys SSL configuration", element=record.endpoint)))
    cert = record.certificate
    if cert is not None:
        valid = (f"{cert.not_before:%Y-%m-%d}" if cert.not_before else "?") + " to " + \
                (f"{cert.not_after:%Y-%m-%d}" if cert.not_after else "?")
        items.append(EvidenceItem(
            "certificate", host,
            f"{cert.subject or '(no subject)'}; SAN {', '.join(cert.dns_names) or 'none'}; valid {valid}; "
            f"private key {'yes' if cert.has_private_key else 'no'}; issuer {cert.issuer}",
            EvidenceSource(file=f"Cert:\\LocalMachine\\{record.store}\\{cert.thumbprint}"), rank=1))
    return items


def certificate_findings(hosts: Mapping[str, object], reference: dt.datetime | None) -> list[Finding]:
    """Every certificate finding of the fleet; the same problem with the same certificate on the same site of
    several servers (a farm) is one finding listing them."""
    grouped: dict[tuple[str, str, str, str], tuple[_Problem, list[str], list[EvidenceItem], str]] = {}
    for name in sorted(hosts):
        host = hosts[name]
        records = list(getattr(host, "ssl_bindings", ()) or ())
        config = getattr(host, "config", None)
        if not records and not getattr(host, "ssl_collected", False):
            continue  # not collected on this host: nothing to judge (the run says whether it was asked for)
        when = reference or getattr(host, "ssl_time", None)
        host_clock = reference is None
        site_bindings = https_bindings(config) if config is not None else []
        used: dict[int, list[SiteBinding]] = defaultdict(list)
        for binding in site_bindings:
            record = serving_record(binding, records)
            if record is None:
                problem = _Problem(
                    "https-binding-without-certificate", "high",
                    f"HTTPS binding {binding.binding.binding_information} has no certificate in HTTP.sys",
                    "no HTTP.sys SSL record serves this binding",
                    f"Site {binding.site} has an https binding ({binding.binding.binding_information}), but HTTP.sys "
                    f"holds no SSL record for it ({'SNI ' + binding.host_header if binding.binding.ssl_flags & SNI_FLAG else 'IP'}"
                    f":{binding.port}): TLS handshakes on it fail.",
                    Fix(f"({_rebind_target(binding)}).AddSslCertificate('<thumbprint>', 'My')",
                        notes="Choose a certificate from Cert:\\LocalMachine\\My. iisfleet never runs this."))
                _add(grouped, problem, name, binding.site, binding.binding.binding_information, "",
                     [EvidenceItem("config", name, f"site {binding.site}: https binding "
                                                   f"{binding.binding.binding_information}",
                                   _source(binding))], host_clock=False)
                continue
            used[id(record)].append(binding)
        for record in records:
            if record.kind == "ccs" or record.status == "central-store":
                continue
            bindings = used.get(id(record)) or [None]
            for binding in bindings:
                names = sorted({n for n in ((binding.host_header if binding else ""),
                                            record.host_name if record.kind == "sni" else "") if n},
                               key=str.lower)
                site = binding.site if binding else ""
                for problem in _problems(record, names, when, site, binding):
                    _add(grouped, problem, name, site, record.endpoint, record.certificate_hash,
                         _evidence(name, record, binding), host_clock=host_clock and problem.cause in _DATED)
    out = []
    for (_cause, site, _key, _thumb), (problem, names, evidence, level, endpoint) in sorted(grouped.items()):
        out.append(Finding(cause=problem.cause, title=problem.title, substatus=SUBSTATUS,  # type: ignore[arg-type]
                           severity=problem.severity, confidence=Confidence(level, problem.reason  # type: ignore[arg-type]
                           + ("; dates judged against the host's own clock" if level == "medium" else "")),
                           hosts=tuple(sorted(names)), site=site, scope=endpoint, terminal_401=0,
                           evidence=tuple(evidence), explanation=problem.explanation, fix=problem.fix))
    return out


_DATED = {"certificate-expired", "certificate-expiring", "certificate-not-yet-valid"}


def _source(binding: SiteBinding) -> EvidenceSource | None:
    src = binding.binding.source
    return EvidenceSource(file=src.file, line=src.line, element=src.element) if src else None


def _rebind_target(binding: SiteBinding) -> str:
    return (f"Get-WebBinding -Name {_quote(binding.site)} -Protocol https -Port {binding.port}"
            + (f" -HostHeader {_quote(binding.host_header)}" if binding.host_header else ""))


def _add(grouped: dict, problem: _Problem, host: str, site: str, endpoint: str, thumbprint: str,
         evidence: list[EvidenceItem], *, host_clock: bool) -> None:
    key = (problem.cause, site, endpoint.lower(), thumbprint)
    level = "medium" if host_clock else "high"
    if key in grouped:
        first, hosts, items, old, shown = grouped[key]
        grouped[key] = (first, [*hosts, host], [*items, *evidence], "medium" if "medium" in (old, level) else level,
                        shown)
    else:
        grouped[key] = (problem, [host], list(evidence), level, endpoint)
