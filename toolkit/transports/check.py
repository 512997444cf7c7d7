"""``hosts check``: is each host reachable the way the inventory says, step by step?

Each host goes through the same ladder, stopping at the first rung that fails (later rungs would only
repeat the same failure): DNS forward (and reverse, informative), TCP port, TLS (certificate trust, name
and expiry) or the SSH host key, authentication, a trivial remote command (the ``Get-HostFact``
collector, which every host answers and which reports the host clock), clock skew, and for WinRM the
host's maximum envelope size. Then, before any run, what the session may do (``_session_probe.ps1``:
PowerShell version, language mode, elevation, the groups that matter, whether inetsrv\\config and the
Security log are readable), what each missing right will cost (``toolkit.jea.rights``), and whether the
iisfleet JEA endpoint is registered on the host.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from toolkit.errors import ToolkitError
from toolkit.models import HostConfig
from toolkit.secrets import redact
from toolkit.transports import Transport, create_transport

Status = Literal["ok", "warn", "fail", "skip"]
CHECKS = ("dns", "reverse_dns", "tcp", "tls", "auth", "command", "clock", "envelope", "session", "rights", "jea")
SESSION_PROBE = "_session_probe"
TRIVIAL_COLLECTOR = "Get-HostFact"
#: Kerberos refuses tickets beyond 5 minutes of skew; warn well before that.
SKEW_WARN_S = 60.0
SKEW_FAIL_S = 300.0
CERT_WARN_DAYS = 30


@dataclass
class CheckItem:
    name: str
    status: Status
    detail: str = ""
    category: str | None = None  # failure category, as the runner would report it
    explanation: str | None = None
    #: host findings a run reports for the same lack (toolkit.jea.rights: one table for both)
    findings: list[str] = field(default_factory=list)


@dataclass
class HostCheck:
    host: str
    address: str
    transport: str
    port: int
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(item.status != "fail" for item in self.items)

    def item(self, name: str) -> CheckItem | None:
        return next((i for i in self.items if i.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "address": self.address, "transport": self.transport, "port": self.port,
                "ok": self.ok, "checks": [asdict(i) for i in self.items]}


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return False


def _fail(name: str, exc: BaseException) -> CheckItem:
    if isinstance(exc, ToolkitError):
        return CheckItem(name, "fail", redact(exc.message), getattr(exc, "category", None),
                         redact(exc.explanation) if exc.explanation else None)
    return CheckItem(name, "fail", redact(f"{type(exc).__name__}: {exc}"), "protocol")


def _describe_certificate(der: bytes) -> tuple[str, float]:
    """``"CN=web01, SAN=web01.lab, expires 2027-01-01"`` and days until expiry."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    expires = cert.not_valid_after_utc
    days = (expires - datetime.now(timezone.utc)).total_seconds() / 86400
    parts = [f"CN={common_names[0]}" if common_names else "no CN"]
    if names:
        parts.append("SAN=" + ",".join(names[:4]) + ("…" if len(names) > 4 else ""))
    parts.append(f"expires {expires:%Y-%m-%d} ({days:.0f} days)")
    return ", ".join(parts), days


def _tls_check(host: HostConfig, ip: str, port: int) -> CheckItem:
    opts = host.winrm
    timeout = opts.connect_timeout
    # First fetch the certificate without trusting it, so a failure can still name the certificate.
    loose = ssl.create_default_context()
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, \
                loose.wrap_socket(raw, server_hostname=host.address) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        return CheckItem("tls", "fail", f"TLS handshake failed: {type(exc).__name__}: {exc}", "tls",
                         "the port did not complete a TLS handshake: is it the HTTP listener?")
    description, days = _describe_certificate(der)
    description = f"{version}, {description}"
    if days < 0:
        return CheckItem("tls", "fail", description, "tls", "the host's certificate has expired")
    if not opts.cert_validation:
        return CheckItem("tls", "warn", description + "; not verified (cert_validation off)")
    strict = ssl.create_default_context(cafile=opts.ca_bundle) if opts.ca_bundle else ssl.create_default_context()
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, \
                strict.wrap_socket(raw, server_hostname=host.address):
            pass
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            explanation = "the certificate does not name the address you connect to: connect by a name it lists"
        else:
            explanation = "the host's certificate is not trusted: pass --ca-bundle with the issuing CA"
        return CheckItem("tls", "fail", f"{description}; {reason}", "tls", explanation)
    except (OSError, ssl.SSLError) as exc:
        return CheckItem("tls", "fail", f"{description}; {type(exc).__name__}: {exc}", "tls")
    if days < CERT_WARN_DAYS:
        return CheckItem("tls", "warn", description + "; renew soon")
    return CheckItem("tls", "ok", description)


def _parse_utc(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, AttributeError):
        return None


def check_host(host: HostConfig, *, catalog: Mapping[str, Any] | None = None,
               transport_factory: Callable[[HostConfig], Transport] | None = None,
               command_timeout: float = 60.0) -> HostCheck:
    """Run the check ladder on one host. Never raises: every problem is a ``fail`` item."""
    port = host.winrm.effective_port if host.transport == "winrm" else host.ssh.port
    result = HostCheck(host=host.name, address=host.address, transport=host.transport, port=port)
    items = result.items

    def skip_rest(after: str) -> HostCheck:
        for name in CHECKS[CHECKS.index(after) + 1:]:
            if result.item(name) is None:
                items.append(CheckItem(name, "skip", f"not checked: {after} failed"))
        return result

    # DNS
    try:
        infos = socket.getaddrinfo(host.address, port, type=socket.SOCK_STREAM)
        ips = list(dict.fromkeys(info[4][0] for info in infos))  # resolver order: what a client would try
        items.append(CheckItem("dns", "ok", "IP address" if _is_ip(host.address) else ", ".join(ips)))
    except OSError as exc:
        items.append(CheckItem("dns", "fail", f"{host.address}: {exc}", "dns",
                               "the name does not resolve: check the inventory address and DNS"))
        return skip_rest("dns")
    ip = ips[0]
    try:
        name = socket.gethostbyaddr(ip)[0]
        items.append(CheckItem("reverse_dns", "ok", name))
    except OSError:
        if _is_ip(host.address):  # connecting by IP already rules Kerberos out; a missing PTR changes nothing
            items.append(CheckItem("reverse_dns", "skip", f"no PTR record for {ip}"))
        else:
            items.append(CheckItem("reverse_dns", "warn", f"no PTR record for {ip} (harmless for NTLM; Kerberos "
                                   "needs the host's real FQDN)"))

    # TCP
    started = time.monotonic()
    try:
        socket.create_connection((ip, port), timeout=host.winrm.connect_timeout
                                 if host.transport == "winrm" else host.ssh.connect_timeout).close()
        items.append(CheckItem("tcp", "ok", f"{ip}:{port} open ({(time.monotonic() - started) * 1000:.0f} ms)"))
    except OSError as exc:
        refused = isinstance(exc, ConnectionRefusedError)
        items.append(CheckItem("tcp", "fail", f"{ip}:{port}: {exc.strerror or exc}", "connect",
                               "nothing listens on the port (service stopped, wrong port, or a firewall "
                               "rejects it)" if refused else "no answer: host down or a firewall drops the port"))
        return skip_rest("tcp")

    # TLS (WinRM over HTTPS only; SSH host keys are verified as part of authentication)
    if host.transport == "winrm" and host.winrm.scheme == "https":
        tls = _tls_check(host, ip, port)
        items.append(tls)
        if tls.status == "fail":
            return skip_rest("tls")
    elif host.transport == "winrm":
        items.append(CheckItem("tls", "skip", "plain HTTP (messages are encrypted by the auth protocol)"
                               if host.winrm.encryption != "never" else "plain HTTP, NOT encrypted"))
    else:
        items.append(CheckItem("tls", "skip", "SSH: the host key is checked during authentication"))

    # Authentication
    transport = (transport_factory or create_transport)(host)
    try:
        try:
            transport.open()
            user = host.credential.username if host.credential and host.credential.username else "(ticket)"
            items.append(CheckItem("auth", "ok", f"logged on as {user}"))
        except Exception as exc:
            failure = _fail("auth", exc)
            if host.transport == "ssh" and failure.category == "tls":
                # an unknown or changed host key is an identity failure, shown where TLS ones are
                items.remove(result.item("tls"))  # type: ignore[arg-type]
                items.append(CheckItem("tls", "fail", failure.detail, "tls", failure.explanation))
                items.append(CheckItem("auth", "skip", "not checked: the host key was not trusted"))
                return skip_rest("auth")
            items.append(failure)
            return skip_rest("auth")

        # Trivial remote command + clock
        if catalog is None:
            from toolkit.collectors import load_catalog

            catalog = load_catalog()
        collector = catalog.get(TRIVIAL_COLLECTOR)
        if collector is None:
            items.append(CheckItem("command", "fail", f"collector {TRIVIAL_COLLECTOR} is not bundled", "config"))
            return skip_rest("command")
        try:
            before = datetime.now(timezone.utc)
            output = transport.run_script(collector.script, {}, timeout=command_timeout)
            after = datetime.now(timezone.utc)
            if output.had_errors or output.errors:
                raise ToolkitError("; ".join(output.errors[:2]) or "the command failed")
            from toolkit.contract import validate_envelope

            envelope = validate_envelope(output.stdout, collector=collector, host=host.name)
            data = envelope["data"]
            items.append(CheckItem("command", "ok", f"{data.get('computer_name')}: PowerShell "
                                   f"{data.get('ps_version')}, IIS {data.get('iis_version') or 'not installed'} "
                                   f"({output.duration_s * 1000:.0f} ms)"))
        except Exception as exc:
            items.append(_fail("command", exc))
            if items[-1].category == "environment":  # the probe says what the session lacks
                items.extend(_session_checks(host, transport, command_timeout))
            return skip_rest("command")
        remote = _parse_utc(str(data.get("utc_now", "")))
        if remote is None:
            items.append(CheckItem("clock", "warn", "the host did not report its clock"))
        else:
            midpoint = before + (after - before) / 2
            skew = (remote - midpoint).total_seconds()
            status: Status = "ok" if abs(skew) < SKEW_WARN_S else ("warn" if abs(skew) < SKEW_FAIL_S else "fail")
            items.append(CheckItem("clock", status, f"{skew:+.1f} s", "auth" if status == "fail" else None,
                                   "Kerberos fails beyond 5 minutes of skew: fix time sync"
                                   if status == "fail" else None))

        # WinRM envelope size
        if host.transport == "winrm" and hasattr(transport, "max_envelope_size"):
            try:
                size = transport.max_envelope_size()
                items.append(CheckItem("envelope", "ok" if size >= 150 * 1024 else "warn",
                                       f"MaxEnvelopeSizekb = {size // 1024}"))
            except Exception as exc:
                items.append(_fail("envelope", exc))
        else:
            items.append(CheckItem("envelope", "skip", "n/a over SSH"))
        items.extend(_session_checks(host, transport, command_timeout))
    finally:
        transport.close()
    items.append(_jea_endpoint_check(host, transport_factory))
    return result


def _session_checks(host: HostConfig, transport: Transport, timeout: float) -> list[CheckItem]:
    """What the session may do, and what each right it lacks will cost (two items: session, rights)."""
    from toolkit.jea.rights import RIGHTS, cost, right_in_error, rights_lacking

    if getattr(transport, "jea", False):
        return [CheckItem("session", "ok", f"JEA endpoint {host.winrm.configuration_name}: NoLanguage; the collectors "
                          "run as the endpoint's run-as account"),
                CheckItem("rights", "ok", "those of the endpoint's run-as account (a virtual account is in "
                          "Administrators for the session unless the endpoint limits its groups)")]
    from toolkit.collectors import read_bundled_text

    try:
        output = transport.run_script(read_bundled_text(f"{SESSION_PROBE}.ps1"), {}, timeout=timeout)
        if output.had_errors or output.errors:
            raise ToolkitError("; ".join(output.errors[:2]) or "the probe failed")
        probe = json.loads(output.stdout.strip()[:100_000])
        if not isinstance(probe, dict) or probe.get("schema") != "iisfleet.session/1":
            raise ToolkitError("the session probe's answer is not an iisfleet.session/1 document")
    except Exception as exc:
        failure = _fail("session", exc)
        if failure.category != "environment":
            failure = CheckItem("session", "warn", f"the session probe did not run: {failure.detail}")
        refused = right_in_error(failure.detail) if failure.category == "environment" else None
        if refused is not None:
            return [failure, CheckItem("rights", "fail", f"{RIGHTS[refused].finding}: {cost(refused)}", "environment",
                                       RIGHTS[refused].fix, [RIGHTS[refused].finding])]
        return [failure, CheckItem("rights", "skip", "not checked: the session probe did not run")]

    def text(key: str) -> str:
        return " ".join(str(probe.get(key) or "?").split())[:80]

    mode, version = text("language_mode"), text("ps_version")
    groups = [str(g)[:40] for g in probe.get("groups") or [] if isinstance(g, str)][:5]
    detail = (f"PowerShell {version}, {mode}, {text('user')}, "
              f"{'elevated' if probe.get('elevated') else 'NOT elevated' if probe.get('elevated') is False else 'elevation unknown'}"
              f", groups: {', '.join(groups) or 'none of Administrators, Event Log Readers, Remote Management Users'}")
    lacking = rights_lacking(ps_version=version, language_mode=mode, elevated=probe.get("elevated"),
                             inetsrv_readable=probe.get("inetsrv_config_readable"),
                             security_log_readable=probe.get("security_log_readable"))
    costs = "; ".join(f"{RIGHTS[r].finding}: {cost(r)}" for r in lacking)
    fixes = " | ".join(RIGHTS[r].fix for r in lacking)
    findings = [RIGHTS[r].finding for r in lacking]
    if any(RIGHTS[r].collectors == ("*",) for r in lacking):  # no collector can run: the session fails
        return [CheckItem("session", "fail", detail, "environment", fixes),
                CheckItem("rights", "fail", costs, "environment", fixes, findings)]
    session = CheckItem("session", "warn" if "powershell-jea" in lacking else "ok",
                        detail + ("; JEA needs PowerShell 5.0+ (WMF 5.1)" if "powershell-jea" in lacking else ""))
    if not any(RIGHTS[r].collectors for r in lacking):
        return [session, CheckItem("rights", "ok", "inetsrv\\config and the Security log are readable",
                                   findings=findings)]
    return [session, CheckItem("rights", "warn", costs, "environment", fixes, findings)]


def _jea_endpoint_check(host: HostConfig, transport_factory: Callable[[HostConfig], Transport] | None) -> CheckItem:
    """Whether the iisfleet JEA endpoint is registered on the host and this account may open it (WinRM only)."""
    from dataclasses import replace

    from toolkit.jea import DEFAULT_ENDPOINT

    if host.transport != "winrm":
        return CheckItem("jea", "skip", "JEA is a WinRM session configuration; not available over SSH")
    if host.winrm.jea:
        return CheckItem("jea", "ok", f"in use: {host.winrm.configuration_name}")
    probe_host = replace(host, winrm=replace(host.winrm, configuration_name=DEFAULT_ENDPOINT, jea=True))
    transport = (transport_factory or create_transport)(probe_host)
    try:
        transport.open()
    except Exception as exc:
        message = redact(str(getattr(exc, "message", exc)))
        if "cannot find" in message.lower() and "session configuration" in message.lower():
            return CheckItem("jea", "skip", f"the {DEFAULT_ENDPOINT} endpoint is not registered (optional: "
                             "`iisfleet jea export`, docs/jea.md)")
        return CheckItem("jea", "warn", f"the {DEFAULT_ENDPOINT} endpoint did not open for this account: {message[:200]}")
    finally:
        transport.close()
    return CheckItem("jea", "ok", f"the {DEFAULT_ENDPOINT} endpoint is registered and opens for this account "
                     "(set `jea: true` and configuration_name to use it)")


def check_hosts(hosts: list[HostConfig], *, concurrency: int = 32,
                on_done: Callable[[HostCheck], None] | None = None, **kwargs: Any) -> list[HostCheck]:
    """``check_host`` over many hosts in parallel; results in the input order."""
    def one(host: HostConfig) -> HostCheck:
        try:
            outcome = check_host(host, **kwargs)
        except Exception as exc:  # a bug in one check must not hide the others
            outcome = HostCheck(host.name, host.address, host.transport, 0, [_fail("dns", exc)])
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(hosts) or 1)),
                            thread_name_prefix="iisfleet-check") as pool:
        return list(pool.map(one, hosts))
