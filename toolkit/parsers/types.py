"""Typed evidence: what the parsers produce and the diagnosis engine consumes.

Owned by the parsers (``toolkit/parsers``). Fields may be added; existing names keep their meaning,
because ``toolkit/diagnose`` is written against them. Every record that came from a file keeps a
``Source`` so a finding can cite it (file and line, or the event record id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """Where a fact came from: a file path on the host (Windows form) and line, or a record id."""

    file: str
    line: int | None = None
    element: str | None = None  # e.g. 'location[@path="Default Web Site/app"]/.../anonymousAuthentication'


# --- IIS configuration -------------------------------------------------------------------------

@dataclass(frozen=True)
class AnonymousAuth:
    enabled: bool = True
    user_name: str = "IUSR"  # "" means: run anonymous requests as the application pool identity
    password_present: bool = False  # never the value: encrypted values are only recorded as present
    source: Source | None = None
    logon_method: str = "ClearText"  # Interactive | Batch | Network | ClearText (used for a specific user)

    @property
    def uses_pool_identity(self) -> bool:
        """Anonymous requests run as the application pool identity (``userName=""``)."""
        return self.user_name == ""


@dataclass(frozen=True)
class WindowsAuth:
    enabled: bool = False
    providers: tuple[str, ...] = ("Negotiate", "NTLM")
    use_kernel_mode: bool = True
    use_app_pool_credentials: bool = False
    extended_protection: str = "None"  # None | Allow | Require
    source: Source | None = None
    extended_protection_flags: str = "None"  # None, Proxy, NoServiceNameCheck, AllowDotlessSpn, ProxyCohosting
    auth_persist_non_ntlm: bool | None = None  # None: not configured (defaults conflict across IIS versions)
    providers_configured: bool = False  # False: nobody set <providers>, so the install default is assumed


@dataclass(frozen=True)
class BasicAuth:
    enabled: bool = False
    realm: str = ""
    default_logon_domain: str = ""
    logon_method: str = "ClearText"
    source: Source | None = None


@dataclass(frozen=True)
class DigestAuth:
    enabled: bool = False
    realm: str = ""
    source: Source | None = None


@dataclass(frozen=True)
class ClientCertificateAuth:
    """iisClientCertificateMappingAuthentication and clientCertificateMappingAuthentication (AD)."""

    iis_mapping_enabled: bool = False
    one_to_one_mappings: int = 0
    many_to_one_mappings: int = 0
    ad_mapping_enabled: bool = False
    ssl_flags: str = ""  # access/@sslFlags, e.g. "Ssl, SslNegotiateCert, SslRequireCert"
    source: Source | None = None
    one_to_one_enabled: bool = True
    many_to_one_enabled: bool = True
    logon_method: str = "ClearText"
    ssl_flags_source: Source | None = None

    @property
    def requires_client_certificate(self) -> bool:
        return "sslrequirecert" in self.ssl_flags.replace(" ", "").lower().split(",")


@dataclass(frozen=True)
class AuthorizationRule:
    access_type: str  # Allow | Deny
    users: str = ""
    roles: str = ""
    verbs: str = ""
    source: Source | None = None


@dataclass(frozen=True)
class IsapiFilter:
    name: str
    path: str
    enabled: bool = True
    scope: str = "global"  # "global" or the site name
    source: Source | None = None


@dataclass(frozen=True)
class HandlerMapping:
    name: str
    path: str  # "*", "*.dll", "*.aspx", ...
    verb: str = "*"
    modules: str = ""
    script_processor: str = ""
    resource_type: str = ""
    source: Source | None = None
    type: str = ""  # managed handler type
    require_access: str = ""  # None | Read | Write | Script (default) | Execute
    pre_condition: str = ""

    @property
    def is_wildcard(self) -> bool:
        return self.path == "*"


@dataclass(frozen=True)
class IpRule:
    allowed: bool
    ip_address: str = ""
    subnet_mask: str = ""
    domain_name: str = ""
    source: Source | None = None  # the <add> element of this entry


@dataclass(frozen=True)
class IpSecurity:
    allow_unlisted: bool = True
    deny_action: str = "Forbidden"  # Unauthorized | Forbidden | NotFound | AbortRequest
    rules: tuple[IpRule, ...] = ()
    dynamic_enabled: bool = False  # denyByConcurrentRequests or denyByRequestRate enabled
    dynamic_deny_action: str = "Forbidden"
    source: Source | None = None


@dataclass(frozen=True)
class EffectiveSettings:
    """The auth-relevant configuration in force for one URL path of one site."""

    site: str
    path: str  # "/" or "/app/sub"
    anonymous: AnonymousAuth = field(default_factory=AnonymousAuth)
    windows: WindowsAuth = field(default_factory=WindowsAuth)
    basic: BasicAuth = field(default_factory=BasicAuth)
    digest: DigestAuth = field(default_factory=DigestAuth)
    client_certificate: ClientCertificateAuth = field(default_factory=ClientCertificateAuth)
    authorization: tuple[AuthorizationRule, ...] = ()
    isapi_filters: tuple[IsapiFilter, ...] = ()  # global + site filters in load order
    handlers: tuple[HandlerMapping, ...] = ()  # in evaluation order
    ip_security: IpSecurity = field(default_factory=IpSecurity)
    application_path: str = "/"  # the application this path belongs to
    app_pool: str = ""  # that application's pool ("" when the site is unknown)
    handlers_access_policy: str = "Read"  # handlers/@accessPolicy
    config_files: tuple[str, ...] = ()  # every file that contributed, in merge order
    #: value key ("anonymous.enabled", "windows.use_kernel_mode", "ip_security.dynamic_deny_action", ...) →
    #: the element (file, line) that decided it; a value left at its schema default has no entry
    sources: Mapping[str, Source] = field(default_factory=dict)

    def source_of(self, key: str, fallback: Source | None = None) -> Source | None:
        """The element that decided ``key`` (see :attr:`sources`), else ``fallback``."""
        return self.sources.get(key) or fallback

    def handler_for(self, url_path: str) -> HandlerMapping | None:
        """The first handler whose ``path`` matches the last segment of ``url_path`` (verb ignored)."""
        import fnmatch

        leaf = url_path.rstrip("/").rsplit("/", 1)[-1].lower()
        for handler in self.handlers:
            pattern = handler.path.lower()
            if pattern == "*" or fnmatch.fnmatchcase(leaf, pattern) or leaf == pattern:
                return handler
        return None


@dataclass(frozen=True)
class AppPool:
    name: str
    identity_type: str = "ApplicationPoolIdentity"  # ApplicationPoolIdentity | NetworkService | LocalSystem | LocalService | SpecificUser
    user_name: str = ""
    password_present: bool = False
    load_user_profile: bool = True  # the parser always sets it (schema default: false)
    source: Source | None = None
    logon_type: str = "LogonBatch"  # LogonBatch | LogonService
    manual_group_membership: bool = False  # False: IIS_IUSRS is added to the worker token
    auto_start: bool = True  # add/@autoStart (schema default true): false = stays stopped after a restart

    @property
    def identity(self) -> str:
        """The account worker processes run as, in the form Windows shows it."""
        return {
            "ApplicationPoolIdentity": f"IIS APPPOOL\\{self.name}",
            "NetworkService": "NT AUTHORITY\\NETWORK SERVICE",
            "LocalSystem": "NT AUTHORITY\\SYSTEM",
            "LocalService": "NT AUTHORITY\\LOCAL SERVICE",
        }.get(self.identity_type, self.user_name)


@dataclass(frozen=True)
class VirtualDirectory:
    site: str
    application_path: str  # "/" or "/app"
    path: str  # vdir path within the application, "/" or "/images"
    physical_path: str  # as configured (may hold %SystemDrive%)
    user_name: str = ""  # connect-as user (UNC content)
    password_present: bool = False
    logon_method: str = ""
    source: Source | None = None

    @property
    def url_path(self) -> str:
        app = self.application_path.rstrip("/")
        return (app + self.path) if self.path != "/" else (app or "/")

    @property
    def is_unc(self) -> bool:
        return self.physical_path.startswith("\\\\")


@dataclass(frozen=True)
class Application:
    site: str
    path: str
    app_pool: str
    virtual_directories: tuple[VirtualDirectory, ...] = ()
    source: Source | None = None


@dataclass(frozen=True)
class Binding:
    protocol: str
    binding_information: str  # "*:80:www.contoso.com"
    #: sslFlags: 1 SNI (the certificate is chosen by host name), 2 Centralized Certificate Store
    ssl_flags: int = field(default=0, compare=False)
    #: the <binding> element (file, line); not part of equality, so farms compare what is served
    source: Source | None = field(default=None, compare=False)

    @property
    def host_header(self) -> str:
        parts = self.binding_information.split(":", 2)
        return parts[2] if len(parts) == 3 else ""


@dataclass(frozen=True)
class Site:
    id: int
    name: str
    bindings: tuple[Binding, ...] = ()
    applications: tuple[Application, ...] = ()
    log_directory: str = "%SystemDrive%\\inetpub\\logs\\LogFiles"
    log_format: str = "W3C"
    freb_enabled: bool = False
    freb_directory: str = "%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles"
    source: Source | None = None
    freb_max_log_files: int = 50


@dataclass(frozen=True)
class IisConfig:
    sites: tuple[Site, ...] = ()
    app_pools: tuple[AppPool, ...] = ()
    #: effective settings for every site root, application, vdir and <location> path found
    effective: tuple[EffectiveSettings, ...] = ()
    global_isapi_filters: tuple[IsapiFilter, ...] = ()
    warnings: tuple[str, ...] = ()  # things the parser could not read, with file and line
    #: settings for the server level only (what a site the config does not list would get)
    server_defaults: EffectiveSettings | None = None
    #: traceFailedRequests rules: (config path, status codes) pairs, e.g. ("Default Web Site", "401")
    freb_rules: tuple[tuple[str, str], ...] = ()

    def site(self, name_or_id: str | int) -> Site | None:
        """A site by name (case-insensitive), id, or ``W3SVC<id>``."""
        key = str(name_or_id).strip()
        if key.upper().startswith("W3SVC") and key[5:].isdigit():
            key = key[5:]
        for site in self.sites:
            if site.name.lower() == key.lower() or (key.isdigit() and site.id == int(key)):
                return site
        return None

    def app_pool(self, name: str) -> AppPool | None:
        for pool in self.app_pools:
            if pool.name.lower() == name.lower():
                return pool
        return None


# --- Windows security --------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    sid: str | None
    name: str | None


@dataclass(frozen=True)
class RightCheck:
    """Does an identity hold (or is it denied) one right, and through which principal."""

    right: str
    holds: bool
    via: str | None = None  # the principal (the identity itself or a group) that matched
    how: str = ""  # how the identity counts as ``via``: "self", "implicit", "member of X (through Y)"


@dataclass(frozen=True)
class Ace:
    ace_type: str  # "A" allow, "D" deny
    flags: str  # inheritance flags as in SDDL, e.g. "OICI"
    rights: int  # access mask
    trustee_sid: str
    trustee_name: str = ""  # resolved for well-known SIDs and names the host told us
    inherited: bool = False


@dataclass(frozen=True)
class SecurityDescriptor:
    owner: str | None
    group: str | None
    dacl: tuple[Ace, ...]
    dacl_protected: bool = False
    dacl_present: bool = True
    sddl: str = ""


@dataclass(frozen=True)
class AccessCheck:
    read: bool
    execute: bool
    denied_by: Ace | None = None  # the deny ACE that decided *read* (None when read was not denied)
    granted_by: tuple[Ace, ...] = ()  # the allow ACEs that decided read and/or execute
    execute_denied_by: Ace | None = None  # the deny ACE that decided execute


# --- Kerberos, FREB, events ---------------------------------------------------------------------

@dataclass(frozen=True)
class SpnRecord:
    account: str  # as queried, e.g. "CONTOSO\\svc_web" or "WEB01$"
    account_dn: str
    spn: str
    source: Source | None = None


@dataclass(frozen=True)
class FrebEvent:
    name: str  # e.g. AUTH_START, AUTH_REQUEST_AUTH_TYPE, MODULE_SET_RESPONSE_ERROR_STATUS
    provider: str = ""
    module: str = ""
    notification: str = ""
    http_status: int | None = None
    http_substatus: int | None = None
    error_code: str = ""  # HRESULT as hex, e.g. "0x80070005"
    data: tuple[tuple[str, str], ...] = ()  # raw EventData; renderings under "<Name>.text"
    error_text: str = ""  # FREB's rendering, e.g. "Access is denied. (0x80070005)"
    time_utc: str = ""
    line: int | None = None  # line of the <Event> start tag in the trace file (for citations)

    @property
    def is_auth(self) -> bool:
        return self.name.startswith("AUTH_")

    def value(self, name: str, default: str = "") -> str:
        """One EventData value (or ``"<Name>.text"`` for its rendering)."""
        for key, value in self.data:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class FrebTrace:
    file: str
    url: str
    site_id: int | None
    status_code: int
    substatus: int | None
    authentication_type: str
    token_user_name: str
    app_pool: str = ""
    events: tuple[FrebEvent, ...] = ()
    verb: str = ""
    remote_user_name: str = ""
    user_name: str = ""
    failure_reason: str = ""  # e.g. STATUS_CODE
    trigger_status: str = ""
    time_taken_ms: int | None = None
    truncated: bool = False  # more events than the parser keeps

    @property
    def summary(self) -> tuple[FrebEvent, ...]:
        """The events that explain a 401, in order: AUTH_* and every error-status event."""
        return tuple(event for event in self.events
                     if event.is_auth or event.name in ("MODULE_SET_RESPONSE_ERROR_STATUS", "USER_SET",
                                                        "GENERAL_SEND_CUSTOM_ERROR")
                     or (event.http_status is not None and event.http_status >= 400))

    @property
    def failing_module(self) -> str:
        """The module that set the error status, if the trace says."""
        for event in self.events:
            if event.http_status is not None and event.http_status >= 400 and event.module:
                return event.module
        return ""


@dataclass(frozen=True)
class LogonFailure:
    """A decoded Security 4625 record."""

    time_utc: str
    record_id: int | None
    target_user: str
    target_domain: str
    status: str  # "0xC000006D"
    status_name: str
    sub_status: str
    sub_status_name: str
    logon_type: int | None
    logon_process: str = ""
    auth_package: str = ""
    ip_address: str = ""
    workstation: str = ""
    process_name: str = ""

    @property
    def reason(self) -> str:
        """The code that says why: SubStatus when it is set, else Status."""
        return self.sub_status if self.sub_status not in ("", "0x0", "0x00000000") else self.status


@dataclass(frozen=True)
class EventLogState:
    name: str
    max_size_bytes: int | None
    file_size_bytes: int | None
    is_full: bool | None
    retention: str = ""  # overwrite | archive | manual (do not overwrite)
