"""One simulated host under construction, and how it is written as a fleet folder (docs/lab-fleet.md).

Scenario code fills a ``HostBuild`` (sites, pools, users, rights, ACLs, events, traffic); ``write_host``
renders the raw artefacts a real server would have: applicationHost.config, web.config files, daily W3C
logs, FREB XML, a UTF-16LE secedit export, events.jsonl and host.yml.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import yaml

from toolkit.lab.certstore import CertificateSpec, write_store
from toolkit.lab.scenarios.traffic import Request, Traffic, render_log

#: libyaml's emitter when PyYAML has it (ten times faster for the large scenario), same output
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

IUSR_SID = "S-1-5-17"
USERS_SID = "S-1-5-32-545"
GUESTS_SID = "S-1-5-32-546"
ADMINS_SID = "S-1-5-32-544"
IIS_IUSRS_SID = "S-1-5-32-568"
READ_EXECUTE = "0x1200a9"


def pool_sid(pool: str) -> str:
    """``IIS APPPOOL\\<pool>`` virtual account SID (SHA-1 of the lower-case name, UTF-16LE)."""
    digest = hashlib.sha1(pool.lower().encode("utf-16-le")).digest()
    return "S-1-5-82-" + "-".join(str(part) for part in struct.unpack("<5I", digest))


def enc(rng: random.Random, provider: str = "IISCngProvider") -> str:
    """An encrypted attribute value as IIS stores it (opaque to everyone but the host)."""
    return f"[enc:{provider}:{base64.b64encode(rng.randbytes(48)).decode()}:enc]"


@dataclass
class Pool:
    name: str
    identity: str = "ApplicationPoolIdentity"  # or SpecificUser / NetworkService / LocalSystem
    user: str = ""

    @property
    def account(self) -> str:
        return self.user if self.identity == "SpecificUser" else f"IIS APPPOOL\\{self.name}"


@dataclass
class VDir:
    path: str  # "/docs"
    physical: str
    user: str = ""


@dataclass
class Site:
    id: int
    name: str
    physical: str
    pool: str
    host_header: str = ""
    port: int = 80
    https: bool = False
    anonymous: bool = True
    anonymous_user: str = "IUSR"
    windows: bool = False
    providers: tuple[str, ...] = ("Negotiate", "NTLM")
    kernel_mode: bool = True
    app_pool_credentials: bool = False
    basic: bool = False
    cert_mapping: bool = False
    ssl_flags: str = ""
    ip_deny: tuple[tuple[str, str], ...] = ()  # (address, mask) with denyAction Unauthorized
    isapi_filters: tuple[tuple[str, str], ...] = ()  # (name, dll path)
    isapi_handlers: tuple[tuple[str, str, str], ...] = ()  # (name, path pattern, dll path)
    freb_status: str = ""  # e.g. "401.3": failed request tracing rule for the site
    auth_in_web_config: bool = False  # the site's web.config carries the auth settings (unlocked)
    vdirs: list[VDir] = field(default_factory=list)
    pages: tuple[str, ...] = ("/", "/index.html", "/css/site.css", "/js/app.js", "/images/logo.png")


@dataclass
class HostBuild:
    name: str
    address: str
    domain: str  # DNS
    netbios: str
    rng: random.Random
    start: dt.datetime
    end: dt.datetime
    machine_sid: str = ""
    domain_joined: bool = True
    iis_installed: bool = True
    os_caption: str = "Microsoft Windows Server 2022 Datacenter"
    os_version: str = "10.0.20348"
    os_build: str = "20348"
    clock_offset_s: float = 0.0
    sites: list[Site] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=lambda: [Pool("DefaultAppPool")])
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    rights: dict[str, list[str]] = field(default_factory=dict)
    acls: dict[str, str] = field(default_factory=dict)
    shares: dict[str, str] = field(default_factory=dict)
    registry: dict[str, Any] = field(default_factory=dict)
    event_logs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[int, Traffic] = field(default_factory=dict)
    frebs: dict[int, list[str]] = field(default_factory=dict)  # site id -> XML documents
    files: dict[str, str] = field(default_factory=dict)  # extra Windows path -> text
    faults: dict[str, Any] = field(default_factory=dict)
    logon_counts: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    #: LocalMachine store certificates and HTTP.sys SSL records (toolkit/lab/certstore.py)
    certificates: list[CertificateSpec] = field(default_factory=list)
    ssl_bindings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.machine_sid:
            self.machine_sid = "S-1-5-21-" + "-".join(str(self.rng.randrange(10**8, 4 * 10**9)) for _ in range(3))
        self.users = [
            self.user("Administrator", 500),
            self.user("Guest", 501, enabled=False, password_required=False),
            self.user("DefaultAccount", 503, enabled=False, password_required=False),
            self.user("WDAGUtilityAccount", 504, enabled=False),
        ]
        self.groups = {
            "Administrators": {"sid": ADMINS_SID, "members": [{"name": f"{self.computer}\\Administrator", "sid": f"{self.machine_sid}-500"},
                                                              {"name": f"{self.netbios}\\Domain Admins", "sid": "S-1-5-21-1004336348-1177238915-682003330-512"}]},
            "Users": {"sid": USERS_SID, "members": [{"name": "NT AUTHORITY\\INTERACTIVE", "sid": "S-1-5-4"},
                                                    {"name": "NT AUTHORITY\\Authenticated Users", "sid": "S-1-5-11"},
                                                    {"name": f"{self.netbios}\\Domain Users", "sid": "S-1-5-21-1004336348-1177238915-682003330-513"}]},
            "Guests": {"sid": GUESTS_SID, "members": [{"name": f"{self.computer}\\Guest", "sid": f"{self.machine_sid}-501"}]},
            "IIS_IUSRS": {"sid": IIS_IUSRS_SID, "members": [{"name": "NT AUTHORITY\\IUSR", "sid": IUSR_SID}]},
            "Remote Management Users": {"sid": "S-1-5-32-580", "members": []},
        }
        self.rights = default_rights()
        self.event_logs = [
            {"name": "Security", "max_size_bytes": 134217728, "file_size_bytes": 37818368, "record_count": 61234,
             "is_full": False, "retention": "Circular"},
            {"name": "System", "max_size_bytes": 20971520, "file_size_bytes": 4263936, "record_count": 9120,
             "is_full": False, "retention": "Circular"},
        ]
        self.registry = {"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\CrashOnAuditFail": 0}
        self.logon_counts = {"4624_type3": self.rng.randrange(400, 3000), "4624_type8": self.rng.randrange(0, 60)}
        self.acls["C:\\inetpub\\wwwroot"] = content_sddl()

    # -- identity helpers ---------------------------------------------------------------------------------------
    @property
    def computer(self) -> str:
        return self.name.upper()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.domain}"

    def user(self, name: str, rid: int, **state: Any) -> dict[str, Any]:
        record = {"name": name, "sid": f"{self.machine_sid}-{rid}", "enabled": True, "locked_out": False,
                  "password_expired": False, "password_required": True, "account_expires": None,
                  "password_last_set": (self.end - dt.timedelta(days=self.rng.randrange(20, 300))).strftime("%Y-%m-%dT%H:%M:%SZ")}
        record.update(state)
        return record

    def add_user(self, name: str, **state: Any) -> dict[str, Any]:
        record = self.user(name, 1000 + len(self.users), **state)
        self.users.append(record)
        self.groups["Users"]["members"].append({"name": f"{self.computer}\\{name}", "sid": record["sid"]})
        return record

    def add_member(self, group: str, name: str, sid: str) -> None:
        self.groups[group]["members"].append({"name": name, "sid": sid})

    def next_site_id(self) -> int:
        return max((s.id for s in self.sites), default=0) + 1

    def add_site(self, name: str, *, pool: str | None = None, physical: str | None = None, **options: Any) -> Site:
        site_id = self.next_site_id()
        pool = pool or (name.replace(" ", "") + "Pool" if site_id > 1 else "DefaultAppPool")
        if all(p.name != pool for p in self.pools):
            self.pools.append(Pool(pool))
        physical = physical or ("C:\\inetpub\\wwwroot" if site_id == 1 else f"D:\\sites\\{name.replace(' ', '').lower()}")
        site = Site(id=site_id, name=name, physical=physical, pool=pool, **options)
        self.sites.append(site)
        self.acls.setdefault(physical, content_sddl(extra=[pool_sid(pool)]))
        self.traffic[site_id] = Traffic(self.rng, site_id=site_id, server_ip=self.address,
                                        port=443 if site.https else site.port, start=self.start, end=self.end,
                                        domain=self.netbios)
        return site

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    def certificate(self, site: Site, *, dns_names: tuple[str, ...] | None = None, valid_days: float = 300,
                    age_days: float = 200, private_key: bool = True, in_store: bool = True) -> None:
        """The SNI certificate HTTP.sys presents for ``site``'s https binding: valid ``age_days`` before the
        traffic ends until ``valid_days`` after (negative: already expired); ``in_store=False`` leaves the SSL
        record naming a thumbprint the store does not hold."""
        label = site.name.replace(" ", "").lower()
        names = dns_names if dns_names is not None else (site.host_header,)
        binding: dict[str, Any] = {"kind": "sni", "host_name": site.host_header, "port": 443, "store": "MY"}
        if in_store:
            self.certificates.append(CertificateSpec(
                label, names[0] if names else site.host_header, names,
                self.end - dt.timedelta(days=age_days), self.end + dt.timedelta(days=valid_days),
                private_key=private_key))
            binding["certificate"] = label
        else:
            binding["thumbprint"] = hashlib.sha1(f"{self.name}:{label}:removed".encode()).hexdigest().upper()  # noqa: S324
        self.ssl_bindings.append(binding)

    # -- evidence helpers ---------------------------------------------------------------------------------------
    def logon_failure(self, when: dt.datetime, *, user: str, domain: str, status: str, substatus: str, logon_type: int,
                      package: str = "Negotiate", process: str = "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                      ip: str = "-", reason: str = "%%2313", logon_process: str = "Advapi") -> None:
        """A Security 4625 as Windows writes it for a logon IIS attempted."""
        self.events.append({
            "log": "Security", "id": 4625, "provider": "Microsoft-Windows-Security-Auditing", "time": iso(when),
            "data": {
                "SubjectUserSid": "S-1-5-18", "SubjectUserName": f"{self.computer}$", "SubjectDomainName": self.netbios,
                "SubjectLogonId": "0x3e7", "TargetUserSid": "S-1-0-0", "TargetUserName": user, "TargetDomainName": domain,
                "Status": status, "FailureReason": reason, "SubStatus": substatus, "LogonType": str(logon_type),
                "LogonProcessName": logon_process, "AuthenticationPackageName": package,
                "WorkstationName": self.computer if ip == "-" else "-", "TransmittedServices": "-", "LmPackageName": "-",
                "KeyLength": "0", "ProcessId": "0x1a2c" if process != "-" else "0x0", "ProcessName": process,
                "IpAddress": ip, "IpPort": "-" if ip == "-" else str(self.rng.randrange(49152, 65535)),
            }})

    def event(self, log: str, event_id: int, provider: str, when: dt.datetime, data: dict[str, str]) -> None:
        self.events.append({"log": log, "id": event_id, "provider": provider, "time": iso(when), "data": data})

    def freb(self, site: Site, request: Request, *, sub: str, module: str, notification: str, error_code: str,
             auth_type: str = "anonymous", token_user: str = "NT AUTHORITY\\IUSR", user: str = "",
             auth_supported: tuple[tuple[int, str], ...] = ((1, "Anonymous"),)) -> None:
        self.frebs.setdefault(site.id, []).append(freb_xml(self, site, request, sub=sub, module=module,
                                                           notification=notification, error_code=error_code,
                                                           auth_type=auth_type, token_user=token_user, user=user,
                                                           auth_supported=auth_supported))


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def content_sddl(*, extra: list[str] | None = None, anonymous: bool = True, users: bool = True) -> str:
    """A content folder DACL as Windows writes it (protected, inherited to children)."""
    aces = ["(A;OICI;FA;;;SY)", "(A;OICI;FA;;;BA)"]
    if users:
        aces.append(f"(A;OICI;{READ_EXECUTE};;;BU)")
    if anonymous:
        aces += [f"(A;OICI;{READ_EXECUTE};;;{IIS_IUSRS_SID})", f"(A;OICI;{READ_EXECUTE};;;{IUSR_SID})"]
    aces += [f"(A;OICI;{READ_EXECUTE};;;{sid})" for sid in extra or []]
    return "O:BAG:SYD:PAI" + "".join(aces)


def default_rights() -> dict[str, list[str]]:
    """``[Privilege Rights]`` of a Windows Server 2022 member server with IIS (as secedit exports it)."""
    pool = pool_sid("DefaultAppPool")
    return {
        "SeNetworkLogonRight": ["*S-1-1-0", "*S-1-5-32-544", "*S-1-5-32-545", "*S-1-5-32-551"],
        "SeBackupPrivilege": ["*S-1-5-32-544", "*S-1-5-32-551"],
        "SeChangeNotifyPrivilege": ["*S-1-1-0", "*S-1-5-19", "*S-1-5-20", "*S-1-5-32-544", "*S-1-5-32-545", "*S-1-5-32-551", "*S-1-5-90-0"],
        "SeSystemtimePrivilege": ["*S-1-5-19", "*S-1-5-32-544"],
        "SeCreatePagefilePrivilege": ["*S-1-5-32-544"],
        "SeDebugPrivilege": ["*S-1-5-32-544"],
        "SeRemoteShutdownPrivilege": ["*S-1-5-32-544"],
        "SeAuditPrivilege": ["*S-1-5-19", "*S-1-5-20", f"*{pool}"],
        "SeIncreaseQuotaPrivilege": ["*S-1-5-19", "*S-1-5-20", "*S-1-5-32-544", f"*{pool}"],
        "SeIncreaseBasePriorityPrivilege": ["*S-1-5-32-544", "*S-1-5-90-0"],
        "SeLoadDriverPrivilege": ["*S-1-5-32-544"],
        "SeBatchLogonRight": ["*S-1-5-32-544", "*S-1-5-32-551", "*S-1-5-32-559", "*S-1-5-32-568"],
        "SeServiceLogonRight": ["*S-1-5-80-0", f"*{pool}"],
        "SeInteractiveLogonRight": ["*S-1-5-32-544", "*S-1-5-32-545", "*S-1-5-32-551"],
        "SeSecurityPrivilege": ["*S-1-5-32-544"],
        "SeSystemEnvironmentPrivilege": ["*S-1-5-32-544"],
        "SeProfileSingleProcessPrivilege": ["*S-1-5-32-544"],
        "SeSystemProfilePrivilege": ["*S-1-5-32-544", "*S-1-5-80-3139157870-2983391045-3678747466-658725712-1809340420"],
        "SeAssignPrimaryTokenPrivilege": ["*S-1-5-19", "*S-1-5-20", f"*{pool}"],
        "SeRestorePrivilege": ["*S-1-5-32-544", "*S-1-5-32-551"],
        "SeShutdownPrivilege": ["*S-1-5-32-544", "*S-1-5-32-551"],
        "SeTakeOwnershipPrivilege": ["*S-1-5-32-544"],
        "SeDenyInteractiveLogonRight": ["Guest"],
        "SeUndockPrivilege": ["*S-1-5-32-544"],
        "SeManageVolumePrivilege": ["*S-1-5-32-544"],
        "SeRemoteInteractiveLogonRight": ["*S-1-5-32-544", "*S-1-5-32-555"],
        "SeImpersonatePrivilege": ["*S-1-5-19", "*S-1-5-20", "*S-1-5-32-544", "*S-1-5-32-568", "*S-1-5-6"],
        "SeCreateGlobalPrivilege": ["*S-1-5-19", "*S-1-5-20", "*S-1-5-32-544", "*S-1-5-6"],
        "SeIncreaseWorkingSetPrivilege": ["*S-1-5-32-545"],
        "SeTimeZonePrivilege": ["*S-1-5-19", "*S-1-5-32-544"],
        "SeCreateSymbolicLinkPrivilege": ["*S-1-5-32-544"],
        "SeDelegateSessionUserImpersonatePrivilege": ["*S-1-5-32-544"],
    }


def secedit_inf(rights: dict[str, list[str]]) -> bytes:
    lines = ["[Unicode]", "Unicode=yes", "[Privilege Rights]"]
    lines += [f"{name} = {','.join(holders)}" for name, holders in rights.items()]
    lines += ["[Version]", 'signature="$CHICAGO$"', "Revision=1", ""]
    return "\ufeff".encode("utf-16-le") + "\r\n".join(lines).encode("utf-16-le")


# -- applicationHost.config ------------------------------------------------------------------------------------
_SECTIONS = """    <configSections>
        <sectionGroup name="system.applicationHost">
            <section name="applicationPools" allowDefinition="AppHostOnly" overrideModeDefault="Deny" />
            <section name="log" allowDefinition="AppHostOnly" overrideModeDefault="Deny" />
            <section name="sites" allowDefinition="AppHostOnly" overrideModeDefault="Deny" />
            <section name="webLimits" allowDefinition="AppHostOnly" overrideModeDefault="Deny" />
        </sectionGroup>
        <sectionGroup name="system.webServer">
            <section name="defaultDocument" overrideModeDefault="Allow" />
            <section name="globalModules" allowDefinition="AppHostOnly" overrideModeDefault="Deny" />
            <section name="handlers" overrideModeDefault="Deny" />
            <section name="httpErrors" overrideModeDefault="Allow" />
            <section name="isapiFilters" allowDefinition="MachineToApplication" overrideModeDefault="Deny" />
            <section name="modules" allowDefinition="MachineToApplication" overrideModeDefault="Deny" />
            <section name="staticContent" overrideModeDefault="Allow" />
            <sectionGroup name="security">
                <section name="access" overrideModeDefault="Deny" />
                <section name="dynamicIpSecurity" overrideModeDefault="Deny" />
                <section name="ipSecurity" overrideModeDefault="Deny" />
                <section name="requestFiltering" overrideModeDefault="Allow" />
                <section name="authorization" overrideModeDefault="Allow" />
                <sectionGroup name="authentication">
                    <section name="anonymousAuthentication" overrideModeDefault="Deny" />
                    <section name="basicAuthentication" overrideModeDefault="Deny" />
                    <section name="clientCertificateMappingAuthentication" overrideModeDefault="Deny" />
                    <section name="digestAuthentication" overrideModeDefault="Deny" />
                    <section name="iisClientCertificateMappingAuthentication" overrideModeDefault="Deny" />
                    <section name="windowsAuthentication" overrideModeDefault="Deny" />
                </sectionGroup>
            </sectionGroup>
            <sectionGroup name="tracing">
                <section name="traceFailedRequests" overrideModeDefault="Deny" />
                <section name="traceProviderDefinitions" overrideModeDefault="Deny" />
            </sectionGroup>
        </sectionGroup>
    </configSections>
"""

AUTH_MODULES = (
    ("AnonymousAuthenticationModule", "%windir%\\System32\\inetsrv\\authanon.dll"),
    ("BasicAuthenticationModule", "%windir%\\System32\\inetsrv\\authbas.dll"),
    ("WindowsAuthenticationModule", "%windir%\\System32\\inetsrv\\authsspi.dll"),
    ("CertificateMappingAuthenticationModule", "%windir%\\System32\\inetsrv\\authcert.dll"),
    ("IISCertificateMappingAuthenticationModule", "%windir%\\System32\\inetsrv\\authmap.dll"),
    ("UrlAuthorizationModule", "%windir%\\System32\\inetsrv\\urlauthz.dll"),
    ("IpRestrictionModule", "%windir%\\System32\\inetsrv\\iprestr.dll"),
    ("DynamicIpRestrictionModule", "%windir%\\System32\\inetsrv\\diprestr.dll"),
)
OTHER_MODULES = (
    ("HttpLoggingModule", "%windir%\\System32\\inetsrv\\loghttp.dll"),
    ("StaticFileModule", "%windir%\\System32\\inetsrv\\static.dll"),
    ("DefaultDocumentModule", "%windir%\\System32\\inetsrv\\defdoc.dll"),
    ("IsapiFilterModule", "%windir%\\System32\\inetsrv\\filter.dll"),
    ("IsapiModule", "%windir%\\System32\\inetsrv\\isapi.dll"),
    ("FailedRequestsTracingModule", "%windir%\\System32\\inetsrv\\iisfreb.dll"),
    ("RequestFilteringModule", "%windir%\\System32\\inetsrv\\modrqflt.dll"),
    ("CustomErrorModule", "%windir%\\System32\\inetsrv\\custerr.dll"),
)


def _auth_block(site: Site, build: HostBuild, indent: str) -> str:
    anon_user = site.anonymous_user
    anon = f'<anonymousAuthentication enabled="{str(site.anonymous).lower()}"'
    if anon_user != "IUSR":
        anon += f' userName={quoteattr(anon_user)}'
        if anon_user:
            anon += f' password={quoteattr(enc(build.rng, "AesProvider"))}'
    anon += " />"
    lines = [anon]
    if site.basic:
        lines.append(f'<basicAuthentication enabled="true" defaultLogonDomain="{build.netbios}" realm="{build.domain}" />')
    if site.windows:
        attrs = ['enabled="true"']
        if not site.kernel_mode:
            attrs.append('useKernelMode="false"')
        if site.app_pool_credentials:
            attrs.append('useAppPoolCredentials="true"')
        providers = "".join(f'\n{indent}        <add value="{p}" />' for p in site.providers)
        lines.append(f"<windowsAuthentication {' '.join(attrs)}>\n{indent}    <providers>\n{indent}        <clear />{providers}"
                     f"\n{indent}    </providers>\n{indent}</windowsAuthentication>")
    if site.cert_mapping:
        lines.append(
            f'<iisClientCertificateMappingAuthentication enabled="true" manyToOneCertificateMappingsEnabled="true" oneToOneCertificateMappingsEnabled="false">\n'
            f'{indent}    <manyToOneMappings>\n'
            f'{indent}        <add name="CardHolders-CA38" enabled="true" permissionMode="Allow" userName="{build.computer}\\cardholders" password={quoteattr(enc(build.rng, "AesProvider"))}>\n'
            f'{indent}            <rules>\n'
            f'{indent}                <add certificateField="Issuer" certificateSubField="CN" matchCriteria="Contoso Issuing CA 38" compareCaseSensitive="true" />\n'
            f'{indent}            </rules>\n'
            f'{indent}        </add>\n'
            f'{indent}    </manyToOneMappings>\n'
            f'{indent}</iisClientCertificateMappingAuthentication>')
    return "\n".join(f"{indent}{line}" for line in lines)


def _location(site: Site, build: HostBuild) -> str:
    ind = " " * 16
    parts = []
    if not site.auth_in_web_config:
        parts.append(f"            <security>\n                <authentication>\n{_auth_block(site, build, ind + '    ')}\n"
                     "                </authentication>")
    else:
        parts.append("            <security>")
    if site.ssl_flags:
        parts.append(f'                <access sslFlags="{site.ssl_flags}" />')
    if site.ip_deny:
        entries = "".join(f'\n                    <add ipAddress="{ip}" subnetMask="{mask}" allowed="false" />' for ip, mask in site.ip_deny)
        parts.append(f'                <ipSecurity allowUnlisted="true" denyAction="Unauthorized">{entries}\n                </ipSecurity>')
    parts.append("            </security>")
    if site.isapi_filters:
        filters = "".join(f'\n                <filter name="{n}" path="{p}" enabled="true" enableCache="false" />' for n, p in site.isapi_filters)
        parts.append(f"            <isapiFilters>{filters}\n            </isapiFilters>")
    if site.isapi_handlers:
        adds = "".join(f'\n                <add name="{n}" path="{pat}" verb="*" modules="IsapiModule" scriptProcessor="{dll}" '
                       f'resourceType="Unspecified" requireAccess="Execute" preCondition="bitness64" />'
                       for n, pat, dll in site.isapi_handlers)
        parts.append(f'            <handlers accessPolicy="Read, Execute, Script">{adds}\n            </handlers>')
    if site.freb_status:
        parts.append(
            '            <tracing>\n                <traceFailedRequests>\n                    <add path="*">\n'
            '                        <traceAreas>\n'
            '                            <add provider="WWW Server" areas="Authentication,Security,Filter,StaticFile,CGI,Compression,Cache,RequestNotifications,Module,Rewrite" verbosity="Verbose" />\n'
            '                        </traceAreas>\n'
            f'                        <failureDefinitions statusCodes="{site.freb_status}" />\n'
            '                    </add>\n                </traceFailedRequests>\n            </tracing>')
    body = "\n".join(parts)
    unlock = ""
    if site.auth_in_web_config:
        # what `appcmd unlock config "<site>" -section:...` writes: the sections, empty, under overrideMode="Allow"
        unlock = (f'    <location path={quoteattr(site.name)} overrideMode="Allow">\n        <system.webServer>\n'
                  '            <security>\n                <authentication>\n'
                  '                    <anonymousAuthentication />\n                    <windowsAuthentication />\n'
                  '                </authentication>\n            </security>\n        </system.webServer>\n    </location>\n')
    return unlock + f'    <location path={quoteattr(site.name)}>\n        <system.webServer>\n{body}\n        </system.webServer>\n    </location>\n'


def application_host_config(build: HostBuild) -> str:
    pools = []
    for pool in build.pools:
        model = ""
        if pool.identity == "SpecificUser":
            model = f'\n                <processModel identityType="SpecificUser" userName={quoteattr(pool.user)} password={quoteattr(enc(build.rng, "IISWASOnlyCngProvider"))} />\n            '
        elif pool.identity != "ApplicationPoolIdentity":
            model = f'\n                <processModel identityType="{pool.identity}" />\n            '
        pools.append(f'            <add name={quoteattr(pool.name)} managedRuntimeVersion="v4.0">{model}</add>' if model
                     else f'            <add name={quoteattr(pool.name)} managedRuntimeVersion="v4.0" />')
    sites = []
    for site in build.sites:
        bindings = f'<binding protocol="http" bindingInformation="*:{site.port}:{site.host_header}" />'
        if site.https:
            bindings = f'<binding protocol="https" bindingInformation="*:443:{site.host_header}" sslFlags="1" />'
        vdirs = [f'                    <virtualDirectory path="/" physicalPath={quoteattr(site.physical)} />']
        for vdir in site.vdirs:
            user = ""
            if vdir.user:
                user = f' userName={quoteattr(vdir.user)} password={quoteattr(enc(build.rng, "AesProvider"))}'
            vdirs.append(f'                    <virtualDirectory path={quoteattr(vdir.path)} physicalPath={quoteattr(vdir.physical)}{user} />')
        freb = ('\n                <traceFailedRequestsLogging enabled="true" directory="%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles" maxLogFiles="50" />'
                if site.freb_status else "")
        sites.append(
            f'            <site name={quoteattr(site.name)} id="{site.id}" serverAutoStart="true">\n'
            f'                <application path="/" applicationPool={quoteattr(site.pool)}>\n' + "\n".join(vdirs) + "\n"
            f'                </application>\n                <bindings>\n                    {bindings}\n                </bindings>\n'
            f'                <logFile directory="%SystemDrive%\\inetpub\\logs\\LogFiles" />{freb}\n            </site>')
    modules = [m for m in AUTH_MODULES] + list(OTHER_MODULES)
    global_modules = "\n".join(f'            <add name="{n}" image="{img}" />' for n, img in modules)
    module_refs = "\n".join(f'            <add name="{n}" lockItem="true" />' for n, _ in modules)
    locations = "".join(_location(site, build) for site in build.sites)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!--
    IIS configuration sections of {build.computer}. Generated by the iisfleet lab (SIMULATED host).
-->
<configuration>
{_SECTIONS}
    <system.applicationHost>
        <applicationPools>
{chr(10).join(pools)}
            <applicationPoolDefaults managedRuntimeVersion="v4.0">
                <processModel identityType="ApplicationPoolIdentity" />
            </applicationPoolDefaults>
        </applicationPools>
        <log logInUTF8="true">
            <centralBinaryLogFile enabled="true" directory="%SystemDrive%\\inetpub\\logs\\LogFiles" />
            <centralW3CLogFile enabled="true" directory="%SystemDrive%\\inetpub\\logs\\LogFiles" />
        </log>
        <sites>
{chr(10).join(sites)}
            <siteDefaults>
                <logFile logFormat="W3C" directory="%SystemDrive%\\inetpub\\logs\\LogFiles" />
                <traceFailedRequestsLogging directory="%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles" />
            </siteDefaults>
            <applicationDefaults applicationPool="DefaultAppPool" />
            <virtualDirectoryDefaults allowSubDirConfig="true" />
        </sites>
    </system.applicationHost>
    <system.webServer>
        <globalModules>
{global_modules}
        </globalModules>
        <modules>
{module_refs}
        </modules>
        <security>
            <access sslFlags="None" />
            <authentication>
                <anonymousAuthentication enabled="true" userName="IUSR" />
                <basicAuthentication />
                <clientCertificateMappingAuthentication />
                <digestAuthentication />
                <iisClientCertificateMappingAuthentication />
                <windowsAuthentication>
                    <providers>
                        <add value="Negotiate" />
                        <add value="NTLM" />
                    </providers>
                </windowsAuthentication>
            </authentication>
            <ipSecurity allowUnlisted="true" />
            <requestFiltering>
                <fileExtensions allowUnlisted="true" applyToWebDAV="true" />
            </requestFiltering>
        </security>
        <handlers accessPolicy="Read, Script">
            <add name="StaticFile" path="*" verb="*" modules="StaticFileModule,DefaultDocumentModule,DirectoryListingModule" resourceType="Either" requireAccess="Read" />
        </handlers>
        <isapiFilters />
    </system.webServer>
{locations}</configuration>
"""


def web_config(site: Site, build: HostBuild) -> str:
    security = ""
    if site.auth_in_web_config:
        security = ("\n        <security>\n            <authentication>\n"
                    f"{_auth_block(site, build, ' ' * 16)}\n            </authentication>\n        </security>")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
    <system.webServer>
        <defaultDocument>
            <files>
                <clear />
                <add value="index.html" />
                <add value="default.aspx" />
            </files>
        </defaultDocument>{security}
        <httpErrors errorMode="DetailedLocalOnly" />
    </system.webServer>
</configuration>
"""


_FREB_AUTH = {"anonymous": "anonymous", "certmap": "", "none": ""}


def freb_xml(build: HostBuild, site: Site, request: Request, *, sub: str, module: str, notification: str,
             error_code: str, auth_type: str, token_user: str, user: str,
             auth_supported: tuple[tuple[int, str], ...]) -> str:
    activity = "{" + "-".join(build.rng.randbytes(n).hex().upper() for n in (4, 2, 2, 2, 6)) + "}"
    scheme = "https" if site.https else "http"
    host = site.host_header or build.fqdn
    url = f"{scheme}://{host}:{request.port}{request.uri}"
    stamp = request.when

    def event(opcode: int, name: str, data: dict[str, str], offset_ms: int, level: int = 4) -> str:
        when = stamp + dt.timedelta(milliseconds=offset_ms)
        fields = "\n".join(f'  <Data Name="{k}">{v}</Data>' for k, v in data.items())
        return (f'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">\n <System>\n'
                f'  <Provider Name="WWW Server" Guid="{{3A2A4E84-4C21-4981-AE10-3FDA0D9B0F83}}"/>\n  <EventID>0</EventID>\n'
                f'  <Version>1</Version>\n  <Level>{level}</Level>\n  <Opcode>{opcode}</Opcode>\n  <Keywords>0x0</Keywords>\n'
                f'  <TimeCreated SystemTime="{iso(when)[:-1]}0000Z"/>\n  <Correlation ActivityID="{activity}"/>\n'
                f'  <Execution ProcessID="6972" ThreadID="4412"/>\n  <Computer>{build.computer}</Computer>\n </System>\n'
                f' <EventData>\n  <Data Name="ContextId">{activity}</Data>\n{fields}\n </EventData>\n'
                f' <RenderingInfo Culture="en-US">\n  <Opcode>{name}</Opcode>\n </RenderingInfo>\n</Event>\n')

    events = [event(1, "GENERAL_REQUEST_START", {"SiteId": str(site.id), "AppPoolId": site.pool,
                                                 "RequestURL": url, "RequestVerb": request.method}, 0)]
    offset = 1
    for value, label in auth_supported:
        events.append(event(2, "AUTH_START", {"AuthTypeSupported": str(value)}, offset))
        offset += 1
    if auth_type == "anonymous":
        events.append(event(6, "AUTH_REQUEST_AUTH_TYPE", {"RequestAuthType": "1"}, offset))
        events.append(event(10, "AUTH_SUCCEEDED", {"AuthType": "1", "NTLMUsed": "false", "RemoteUserName": "",
                                                   "AuthUserName": "", "TokenImpersonationLevel": "ImpersonationImpersonate"}, offset + 1))
    elif auth_type == "certmap":
        events.append(event(6, "AUTH_REQUEST_AUTH_TYPE", {"RequestAuthType": "128"}, offset))
    elif user:
        events.append(event(10, "AUTH_SUCCEEDED", {"AuthType": "4", "NTLMUsed": "false", "RemoteUserName": user,
                                                   "AuthUserName": user, "TokenImpersonationLevel": "ImpersonationImpersonate"}, offset + 1))
    events.append(event(3, "AUTH_END", {}, offset + 2))
    events.append(event(16, "MODULE_SET_RESPONSE_ERROR_STATUS", {
        "ModuleName": module, "Notification": notification, "HttpStatus": "401", "HttpReason": "Unauthorized",
        "HttpSubStatus": sub.split(".")[1], "ErrorCode": error_code, "ConfigExceptionInfo": ""}, offset + 3, level=3))
    events.append(event(2, "GENERAL_REQUEST_END", {"BytesSent": "6659", "BytesReceived": "412", "HttpStatus": "401",
                                                   "HttpSubStatus": sub.split(".")[1]}, offset + 5))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type=\'text/xsl\' href=\'freb.xsl\'?>\n'
            f'<failedRequest url={quoteattr(url)}\n               siteId="{site.id}"\n               appPoolId={quoteattr(site.pool)}\n'
            f'               processId="6972"\n               verb="{request.method}"\n               remoteUserName={quoteattr(user)}\n'
            f'               userName={quoteattr(user)}\n               tokenUserName={quoteattr(token_user)}\n'
            f'               authenticationType="{_FREB_AUTH.get(auth_type, "NT")}"\n'
            f'               activityId="{activity}"\n               failureReason="STATUS_CODE"\n'
            f'               statusCode="{sub}"\n               triggerStatusCode="{sub}"\n'
            f'               timeTaken="{request.time_taken}"\n               xmlns:freb="http://schemas.microsoft.com/win/2006/06/iis/freb"\n'
            '               >\n' + "".join(events) + "</failedRequest>\n")


# -- writing ---------------------------------------------------------------------------------------------------
def _local(root: Path, windows_path: str) -> Path:
    text = windows_path.replace("/", "\\")
    if text.startswith("\\\\"):
        return root.joinpath("UNC", *[p for p in text[2:].split("\\") if p])
    drive, _, rest = text.partition(":")
    return root.joinpath(drive.upper(), *[p for p in rest.split("\\") if p])


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_bytes(data.encode("utf-8"))
    else:
        path.write_bytes(data)


def host_document(build: HostBuild) -> dict[str, Any]:
    return {
        "fqdn": build.fqdn,
        "computer_name": build.computer,
        "domain_joined": build.domain_joined,
        "os": {"caption": build.os_caption, "version": build.os_version, "build": build.os_build},
        "powershell_version": "5.1.20348.2849",
        "time_zone": "UTC",
        "clock_offset_s": build.clock_offset_s,
        "iis": {"installed": build.iis_installed, "version": "10.0",
                "auth_modules": [name for name, _ in AUTH_MODULES if "Auth" in name]},
        "local_users": build.users,
        "local_groups": [{"name": name, **group} for name, group in build.groups.items()],
        "acls": build.acls,
        "shares": build.shares,
        "registry": build.registry,
        "event_logs": build.event_logs,
        "logon_counts": build.logon_counts,
        "faults": build.faults,
        **({"ssl_bindings": build.ssl_bindings} if build.ssl_bindings else {}),
    }


def write_host(build: HostBuild, host_dir: Path) -> None:
    files = host_dir / "files"
    (host_dir).mkdir(parents=True, exist_ok=True)
    for site in build.sites:  # an https site nobody planted a certificate problem on has a good certificate
        if site.https and not any(b.get("host_name") == site.host_header for b in build.ssl_bindings):
            build.certificate(site)
    write_store(host_dir, build.name, build.certificates)
    with (host_dir / "host.yml").open("w", encoding="utf-8") as handle:
        handle.write(f"# Simulated host {build.name} (generated by `iisfleet lab generate`; see docs/lab-fleet.md)\n")
        yaml.dump(host_document(build), handle, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=200)
    _write(host_dir / "secedit.inf", secedit_inf(build.rights))
    events = sorted(build.events, key=lambda e: (e["time"], e["log"], e["id"]))
    with (host_dir / "events.jsonl").open("w", encoding="utf-8") as handle:
        for number, event in enumerate(events, 1):
            event = {"log": event["log"], "id": event["id"], "provider": event["provider"], "time": event["time"],
                     "record_id": 100000 + number * 7, "machine": build.fqdn, "data": event["data"]}
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
    if build.iis_installed:
        _write(_local(files, "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"), application_host_config(build))
        for site in build.sites:
            _write(_local(files, site.physical + "\\web.config"), web_config(site, build))
            _write(_local(files, site.physical + "\\index.html"), f"<html><body><h1>{site.name}</h1></body></html>\n")
            for vdir in site.vdirs:
                _write(_local(files, vdir.physical + "\\index.html"), "<html><body>docs</body></html>\n")
            logs = render_log(build.traffic[site.id].requests) if site.id in build.traffic else {}
            for name, text in logs.items():
                _write(_local(files, f"C:\\inetpub\\logs\\LogFiles\\W3SVC{site.id}\\{name}"), text)
            for number, document in enumerate(build.frebs.get(site.id, []), 1):
                _write(_local(files, f"C:\\inetpub\\logs\\FailedReqLogFiles\\W3SVC{site.id}\\fr{number:06d}.xml"), document)
        _write(_local(files, "C:\\Windows\\System32\\LogFiles\\HTTPERR\\httperr1.log"), httperr_log(build))
    for path, text in build.files.items():
        _write(_local(files, path), text)


def httperr_log(build: HostBuild) -> str:
    """HTTP.sys drops that have nothing to do with 401s (idle connections, a bad request or two)."""
    rng = build.rng
    lines = ["#Software: Microsoft HTTP API 2.0", "#Version: 1.0",
             f"#Date: {build.start.strftime('%Y-%m-%d %H:%M:%S')}",
             "#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename"]
    stamps = sorted(build.start + dt.timedelta(seconds=rng.randrange(int((build.end - build.start).total_seconds())))
                    for _ in range(6))
    for when in stamps:
        reason, status, uri, verb = rng.choice([("Timer_ConnectionIdle", "-", "-", "-"), ("BadRequest", "400", "/%", "GET"),
                                                ("Timer_ConnectionIdle", "-", "-", "-")])
        lines.append(f"{when.strftime('%Y-%m-%d %H:%M:%S')} 10.10.{rng.randrange(1, 250)}.{rng.randrange(2, 254)} "
                     f"{rng.randrange(49152, 65535)} {build.address} 80 HTTP/1.1 {verb} {uri} - {status} - {reason} -")
    return "\r\n".join(lines) + "\r\n"
