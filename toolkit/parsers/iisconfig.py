"""applicationHost.config + web.config files → sites, app pools and effective auth settings.

The merge follows IIS's own model. Every piece of ``system.webServer`` configuration lives at a
*config path*: ``""`` for the server (the root of applicationHost.config and ``<location path="">``
or ``path="."``), ``Site`` or ``Site/app/sub`` for ``<location>`` blocks and web.config files.
For one URL the applicable pieces are applied from the shallowest config path to the deepest; at
one path, applicationHost.config comes first, then web.config files (a site-root web.config's own
``<location path="app">`` comes before ``app/web.config``). Attributes override one by one;
collections honour ``<clear/>`` and ``<remove>``; handler mappings added lower down go *before*
the inherited ones (the handlers collection prepends), every other collection appends.

Sections a web.config may not set (``overrideModeDefault="Deny"`` in ``<configSections>``, or a
``<location overrideMode="Deny">`` / ``allowOverride="false"`` above it) are ignored with a warning,
as IIS refuses such a file with an HTTP 500. ``lockAttributes`` on an upper level is honoured the
same way. Encrypted values (``[enc:Provider:…:enc]``) and passwords are only recorded as present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from toolkit.errors import InputError

from ._xml import Node, parse_xml
from .types import (
    AnonymousAuth,
    AppPool,
    Application,
    AuthorizationRule,
    BasicAuth,
    Binding,
    ClientCertificateAuth,
    DigestAuth,
    EffectiveSettings,
    HandlerMapping,
    IisConfig,
    IpRule,
    IpSecurity,
    IsapiFilter,
    Site,
    Source,
    VirtualDirectory,
    WindowsAuth,
)

MAX_WEB_CONFIGS = 2000
MAX_WEB_CONFIG_BYTES = 8 * 1024 * 1024
MAX_WARNINGS = 500

DEFAULT_LOG_DIRECTORY = "%SystemDrive%\\inetpub\\logs\\LogFiles"
DEFAULT_FREB_DIRECTORY = "%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles"

# Section paths below system.webServer.
ANONYMOUS = "security/authentication/anonymousAuthentication"
BASIC = "security/authentication/basicAuthentication"
DIGEST = "security/authentication/digestAuthentication"
WINDOWS = "security/authentication/windowsAuthentication"
CERT_AD = "security/authentication/clientCertificateMappingAuthentication"
CERT_IIS = "security/authentication/iisClientCertificateMappingAuthentication"
ACCESS = "security/access"
AUTHORIZATION = "security/authorization"
IP_SECURITY = "security/ipSecurity"
DYNAMIC_IP = "security/dynamicIpSecurity"
ISAPI_FILTERS = "isapiFilters"
HANDLERS = "handlers"
TRACE_RULES = "tracing/traceFailedRequests"
SECTIONS = (ANONYMOUS, BASIC, DIGEST, WINDOWS, CERT_AD, CERT_IIS, ACCESS, AUTHORIZATION, IP_SECURITY,
            DYNAMIC_IP, ISAPI_FILTERS, HANDLERS, TRACE_RULES)

#: Lock state as IIS ships it, used only when applicationHost.config declares no such section
#: (hand-made or trimmed files): the authentication-related sections are locked.
SHIPPED_OVERRIDE_DEFAULTS = {
    ANONYMOUS: "Deny", BASIC: "Deny", DIGEST: "Deny", WINDOWS: "Deny", CERT_AD: "Deny", CERT_IIS: "Deny",
    ACCESS: "Deny", IP_SECURITY: "Deny", DYNAMIC_IP: "Deny", ISAPI_FILTERS: "Deny", HANDLERS: "Deny",
    AUTHORIZATION: "Allow", TRACE_RULES: "Deny",
}

#: Attributes that only steer locking; never settings.
_LOCK_ATTRIBUTES = {"lockAttributes", "lockAllAttributesExcept", "lockElements", "lockAllElementsExcept",
                    "lockItem", "configSource", "xmlns"}


@dataclass(frozen=True)
class _Collection:
    add: str
    remove: str
    clear: str
    keys: tuple[str, ...]
    prepend: bool = False


#: Collections by element path below system.webServer (items are that element's children).
_COLLECTIONS = {
    WINDOWS + "/providers": _Collection("add", "remove", "clear", ("value",)),
    WINDOWS + "/extendedProtection": _Collection("spn", "removeSpn", "clearSpns", ("name",)),
    CERT_IIS + "/oneToOneMappings": _Collection("add", "remove", "clear", ("certificate",)),
    CERT_IIS + "/manyToOneMappings": _Collection("add", "remove", "clear", ("name",)),
    AUTHORIZATION: _Collection("add", "remove", "clear", ("users", "roles", "verbs")),
    IP_SECURITY: _Collection("add", "remove", "clear", ("ipAddress", "subnetMask", "domainName")),
    ISAPI_FILTERS: _Collection("filter", "remove", "clear", ("name",)),
    HANDLERS: _Collection("add", "remove", "clear", ("name",), prepend=True),
    TRACE_RULES: _Collection("add", "remove", "clear", ("path",)),
}


@dataclass(frozen=True)
class WebConfigText:
    """One web.config as the collector found it.

    ``virtual_path`` is the URL path of the folder that holds the file ("/" for the site root,
    "/app/sub" below it); ``path`` is its file path on the host, used in citations.
    """

    site: str
    virtual_path: str
    path: str
    text: str | bytes


def is_encrypted(value: str) -> bool:
    """``[enc:Provider:…:enc]``: IIS's encrypted attribute form (never decoded here)."""
    value = value.strip()
    return value.startswith("[enc:") and value.endswith(":enc]")


def secret_present(value: str | None) -> bool:
    """A password attribute holds something (an empty encrypted value ``[enc:P::enc]`` does not)."""
    if not value:
        return False
    value = value.strip()
    if is_encrypted(value):
        return value.split(":", 2)[2] != ":enc]"
    return True


# --- config paths ---------------------------------------------------------------------------------

def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.replace("\\", "/").split("/") if part and part != ".")


def _norm_url(url_path: str) -> str:
    """``/App/./x/?q=1`` → ``/App/x``; %-escapes decoded (config paths use plain names)."""
    url_path = unquote(url_path.split("?", 1)[0].split("#", 1)[0]).replace("\\", "/")
    parts = [part for part in url_path.split("/") if part and part != "."]
    return "/" + "/".join(parts)


def _is_prefix(prefix: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Segment-wise prefix test; callers on hot paths pass lower-cased tuples (IIS paths ignore case)."""
    return len(prefix) <= len(path) and path[:len(prefix)] == prefix


def _lower(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.lower() for part in path)


@dataclass
class _Layer:
    """One ``system.webServer`` block at one config path."""

    config_path: tuple[str, ...]
    file: str
    rank: int  # 0 applicationHost.config, 1 + depth for a web.config
    order: int  # document order, for ties
    node: Node
    element_prefix: str
    override_mode: str | None = None  # from <location overrideMode|allowOverride>
    inherit_in_child_apps: bool = True
    _sections: dict[str, list[Node]] = field(default_factory=dict)
    key: tuple[str, ...] = ()  # config_path lower-cased, for matching

    def __post_init__(self) -> None:
        self.key = _lower(self.config_path)

    @property
    def is_web_config(self) -> bool:
        return self.rank > 0

    def sections(self, rel_path: str) -> list[Node]:
        """Every element at ``rel_path`` below this block (more than one is a config error in IIS)."""
        if rel_path not in self._sections:
            found = [self.node]
            for part in rel_path.split("/"):
                found = [child for node in found for child in node.all(part)]
            self._sections[rel_path] = found
        return self._sections[rel_path]


# --- the merged view of one element -----------------------------------------------------------------

@dataclass
class _Item:
    key: tuple[str, ...]
    attrs: dict[str, str]
    source: Source
    layer: _Layer


@dataclass
class _Merged:
    attrs: dict[str, tuple[str, Source, int]] = field(default_factory=dict)  # name -> (value, source, seq)
    children: dict[str, _Merged] = field(default_factory=dict)
    items: list[_Item] = field(default_factory=list)
    collection_touched: bool = False
    locked_attributes: set[str] = field(default_factory=set)
    touched_by: list[Source] = field(default_factory=list)

    def value(self, name: str, default: str | None = None) -> str | None:
        entry = self.attrs.get(name)
        return entry[0] if entry else default

    def child(self, name: str) -> _Merged:
        return self.children.get(name) or _Merged()

    def source(self, *names: str) -> Source | None:
        """The source that last set one of ``names`` (or, failing that, last touched the element)."""
        best = None
        for name in names:
            entry = self.attrs.get(name)
            if entry and (best is None or entry[2] > best[2]):
                best = entry
        if best:
            return best[1]
        return self.touched_by[-1] if self.touched_by else None


class _Merger:
    """Applies layers to one section, recording sequence numbers and lock violations."""

    def __init__(self, warnings: list[str]) -> None:
        self.seq = 0
        self.warnings = warnings

    def apply(self, merged: _Merged, node: Node, layer: _Layer, element: str, spec_path: str) -> None:
        source = Source(layer.file, node.line, element)
        merged.touched_by.append(source)
        for name, value in node.attrib.items():
            if name in _LOCK_ATTRIBUTES or name.startswith("xmlns"):
                continue
            if layer.is_web_config and name in merged.locked_attributes:
                _warn(self.warnings, f"{layer.file}:{node.line}: attribute {name!r} of {element} is locked "
                                     "by lockAttributes above; IIS rejects this file (HTTP 500), value ignored")
                continue
            self.seq += 1
            merged.attrs[name] = (value, source, self.seq)
        if not layer.is_web_config:
            for name in (node.get("lockAttributes") or "").split(","):
                if name.strip():
                    merged.locked_attributes.add(name.strip())
        spec = _COLLECTIONS.get(spec_path)
        new_items: list[_Item] = []
        inherited_keys = {item.key for item in merged.items} if spec else set()
        for child in node.children:
            child_element = f"{element}/{child.tag}"
            if spec and child.tag in (spec.add, spec.remove, spec.clear):
                merged.collection_touched = True
                if child.tag == spec.clear:
                    merged.items = []
                    new_items = []
                    inherited_keys = set()
                    continue
                key = tuple((child.get(k) or "").strip().lower() for k in spec.keys)
                if child.tag == spec.remove:
                    # A <remove> names the key attributes; missing ones count as empty, like IIS.
                    if key in inherited_keys:
                        merged.items = [item for item in merged.items if item.key != key]
                        inherited_keys.discard(key)
                    new_items = [item for item in new_items if item.key != key]
                    continue
                attrs = {k: v for k, v in child.attrib.items() if k not in _LOCK_ATTRIBUTES}
                item = _Item(key, attrs, Source(layer.file, child.line, child_element), layer)
                if key in inherited_keys or any(existing.key == key for existing in new_items):
                    shown = " ".join(f'{k}="{child.get(k)}"' for k in spec.keys if child.get(k))
                    _warn(self.warnings, f"{layer.file}:{child.line}: duplicate <{child.tag} {shown}> in "
                                         f"{element} without a <{spec.remove}> first; IIS rejects this "
                                         "(HTTP 500), the later entry is used here")
                    if key in inherited_keys:
                        merged.items = [existing for existing in merged.items if existing.key != key]
                        inherited_keys.discard(key)
                    new_items = [existing for existing in new_items if existing.key != key]
                new_items.append(item)
                continue
            sub = merged.children.setdefault(child.tag, _Merged())
            self.apply(sub, child, layer, child_element, f"{spec_path}/{child.tag}")
        if spec:
            merged.items = (new_items + merged.items) if spec.prepend else (merged.items + new_items)


def _warn(warnings: list[str], message: str) -> None:
    if message in warnings:
        return
    if len(warnings) < MAX_WARNINGS:
        warnings.append(message)
    elif len(warnings) == MAX_WARNINGS:
        warnings.append(f"more than {MAX_WARNINGS} warnings; the rest were dropped")


def _find(node: Node, rel_path: str) -> Node | None:
    current: Node | None = node
    for part in rel_path.split("/"):
        if current is None:
            return None
        current = current.child(part)
    return current


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


#: the binding sslFlags names of IIS's schema (the config system accepts names or the number)
_BINDING_SSL_FLAGS = {"none": 0, "sni": 1, "centralcertstore": 2, "disablehttp2": 4, "disableocspstp": 8,
                      "disablequic": 16, "disabletls13": 32, "disablelegacytls": 64}


def _binding_ssl_flags(value: str | None) -> int:
    """``sslFlags="1"`` or ``sslFlags="Sni, CentralCertStore"``; unknown words count as 0."""
    text = (value or "").strip()
    if text.isdigit():
        return int(text)
    return sum(_BINDING_SSL_FLAGS.get(word.strip().lower(), 0) for word in text.split(",") if word.strip())


# --- applicationHost.config: declarations, sites, pools -----------------------------------------

def _section_defaults(root: Node) -> dict[str, str]:
    """``system.webServer/...`` section path (relative) -> overrideModeDefault."""
    result: dict[str, str] = {}
    sections = root.child("configSections")
    if sections is None:
        return result

    def walk(node: Node, prefix: str) -> None:
        for child in node.children:
            name = child.get("name") or ""
            if child.tag == "sectionGroup":
                walk(child, f"{prefix}/{name}" if prefix else name)
            elif child.tag == "section":
                result[f"{prefix}/{name}" if prefix else name] = child.get("overrideModeDefault") or "Allow"

    walk(sections, "")
    return {path[len("system.webServer/"):]: mode for path, mode in result.items()
            if path.startswith("system.webServer/")}


def _parse_pools(root: Node, file: str) -> tuple[AppPool, ...]:
    pools_node = _find(root, "system.applicationHost/applicationPools")
    if pools_node is None:
        return ()
    defaults_pm = _find(pools_node, "applicationPoolDefaults/processModel")
    base = dict(defaults_pm.attrib) if defaults_pm is not None else {}
    pool_defaults = pools_node.child("applicationPoolDefaults")
    default_auto_start = _bool(pool_defaults.get("autoStart") if pool_defaults is not None else None, True)
    pools = []
    for add in pools_node.all("add"):
        name = add.get("name") or ""
        if not name:
            continue
        pm_node = add.child("processModel")
        pm = dict(base)
        if pm_node is not None:
            pm.update(pm_node.attrib)
        line = pm_node.line if pm_node is not None and "identityType" in pm_node.attrib else add.line
        identity_type = pm.get("identityType") or "ApplicationPoolIdentity"
        pools.append(AppPool(
            name=name,
            identity_type=identity_type,
            user_name=pm.get("userName", "") if identity_type == "SpecificUser" else "",
            password_present=secret_present(pm.get("password")),
            load_user_profile=_bool(pm.get("loadUserProfile"), False),
            source=Source(file, line, f'system.applicationHost/applicationPools/add[@name="{name}"]'),
            logon_type=pm.get("logonType") or "LogonBatch",
            manual_group_membership=_bool(pm.get("manualGroupMembership"), False),
            auto_start=_bool(add.get("autoStart"), default_auto_start),
        ))
    return tuple(pools)


def _parse_sites(root: Node, file: str) -> tuple[Site, ...]:
    sites_node = _find(root, "system.applicationHost/sites")
    if sites_node is None:
        return ()
    site_defaults = sites_node.child("siteDefaults")
    default_log = site_defaults.child("logFile") if site_defaults is not None else None
    default_freb = site_defaults.child("traceFailedRequestsLogging") if site_defaults is not None else None
    app_defaults = sites_node.child("applicationDefaults")
    vdir_defaults = sites_node.child("virtualDirectoryDefaults")
    sites = []
    for site_node in sites_node.all("site"):
        name = site_node.get("name") or ""
        element = f'system.applicationHost/sites/site[@name="{name}"]'
        site_app_defaults = site_node.child("applicationDefaults")
        site_vdir_defaults = site_node.child("virtualDirectoryDefaults")
        default_pool = ((site_app_defaults.get("applicationPool") if site_app_defaults is not None else None)
                        or (app_defaults.get("applicationPool") if app_defaults is not None else None)
                        or "DefaultAppPool")
        vdir_base: dict[str, str] = {}
        for defaults in (vdir_defaults, site_vdir_defaults):
            if defaults is not None:
                vdir_base.update(defaults.attrib)
        applications = []
        for app in site_node.all("application"):
            app_path = _norm_url(app.get("path") or "/")
            vdirs = []
            for vdir in app.all("virtualDirectory"):
                attrs = dict(vdir_base)
                attrs.update(vdir.attrib)
                vdirs.append(VirtualDirectory(
                    site=name, application_path=app_path, path=_norm_url(attrs.get("path") or "/"),
                    physical_path=attrs.get("physicalPath", ""), user_name=attrs.get("userName", ""),
                    password_present=secret_present(attrs.get("password")),
                    logon_method=attrs.get("logonMethod", ""),
                    source=Source(file, vdir.line, f'{element}/application[@path="{app_path}"]/virtualDirectory'
                                                   f'[@path="{attrs.get("path") or "/"}"]'),
                ))
            applications.append(Application(
                site=name, path=app_path, app_pool=app.get("applicationPool") or default_pool,
                virtual_directories=tuple(vdirs),
                source=Source(file, app.line, f'{element}/application[@path="{app_path}"]'),
            ))
        bindings = tuple(Binding(b.get("protocol") or "", b.get("bindingInformation") or "",
                                 ssl_flags=_binding_ssl_flags(b.get("sslFlags")),
                                 source=Source(file, b.line, f'{element}/bindings/binding'
                                                             f'[@bindingInformation="{b.get("bindingInformation") or ""}"]'))
                         for b in (site_node.child("bindings") or Node("bindings", {}, 0)).all("binding"))
        log = {**(default_log.attrib if default_log is not None else {}),
               **(site_node.child("logFile").attrib if site_node.child("logFile") is not None else {})}
        freb = {**(default_freb.attrib if default_freb is not None else {}),
                **(site_node.child("traceFailedRequestsLogging").attrib
                   if site_node.child("traceFailedRequestsLogging") is not None else {})}
        sites.append(Site(
            id=_int(site_node.get("id"), 0), name=name, bindings=bindings, applications=tuple(applications),
            log_directory=log.get("directory") or DEFAULT_LOG_DIRECTORY,
            log_format=log.get("logFormat") or "W3C",
            freb_enabled=_bool(freb.get("enabled"), False),
            freb_directory=freb.get("directory") or DEFAULT_FREB_DIRECTORY,
            source=Source(file, site_node.line, element),
            freb_max_log_files=_int(freb.get("maxLogFiles"), 50),
        ))
    return tuple(sites)


# --- layers ---------------------------------------------------------------------------------------

def _override_mode(location: Node) -> str | None:
    mode = location.get("overrideMode")
    if mode and mode.lower() in ("allow", "deny"):
        return mode.capitalize()
    allow = location.get("allowOverride")
    if allow is not None:
        return "Allow" if _bool(allow, True) else "Deny"
    return None


def _layers_from(root: Node, file: str, base: tuple[str, ...], rank: int, counter: list[int]) -> list[_Layer]:
    layers = []
    direct = root.child("system.webServer")
    if direct is not None:
        counter[0] += 1
        layers.append(_Layer(base, file, rank, counter[0], direct, "system.webServer"))
    for location in root.all("location"):
        raw = location.get("path") or ""
        path = base + _segments(raw)
        inner = location.child("system.webServer")
        counter[0] += 1
        prefix = f'location[@path="{raw}"]/system.webServer'
        node = inner if inner is not None else Node("system.webServer", {}, location.line)
        layers.append(_Layer(path, file, rank, counter[0], node, prefix, _override_mode(location),
                             _bool(location.get("inheritInChildApplications"), True)))
    return layers


# --- the public API -------------------------------------------------------------------------------

def parse_iis_config(app_host_text: str | bytes, app_host_path: str,
                     web_configs: Sequence[WebConfigText] = ()) -> IisConfig:
    """Parse applicationHost.config and the site web.config files into an :class:`IisConfig`.

    Texts may also be given as raw bytes (the XML declaration or BOM then decides the encoding).
    A broken applicationHost.config raises :class:`InputError`; a broken web.config becomes a
    warning (IIS itself would fail only the URLs below it).
    """
    root = parse_xml(app_host_text, app_host_path)
    if root.tag != "configuration":
        raise InputError(f"root element is <{root.tag}>, expected <configuration>", path=app_host_path,
                         line=root.line)
    warnings: list[str] = []
    counter = [0]
    layers = _layers_from(root, app_host_path, (), 0, counter)
    section_defaults = _section_defaults(root)
    sites = _parse_sites(root, app_host_path)
    pools = _parse_pools(root, app_host_path)
    site_names = {site.name.lower(): site.name for site in sites}

    if len(web_configs) > MAX_WEB_CONFIGS:
        _warn(warnings, f"{len(web_configs)} web.config files given; only the first {MAX_WEB_CONFIGS} read")
    extra_paths: list[tuple[str, str]] = []
    for web_config in list(web_configs)[:MAX_WEB_CONFIGS]:
        site_name = site_names.get(web_config.site.lower())
        if site_name is None:
            _warn(warnings, f"{web_config.path}: web.config for site {web_config.site!r}, which "
                            "applicationHost.config does not define; ignored")
            continue
        vpath = _norm_url(web_config.virtual_path or "/")
        try:
            wc_root = parse_xml(web_config.text, web_config.path, max_bytes=MAX_WEB_CONFIG_BYTES)
        except InputError as exc:
            _warn(warnings, f"{exc.message}; IIS answers HTTP 500 for {site_name}{vpath} and below; file ignored")
            continue
        if wc_root.tag != "configuration":
            _warn(warnings, f"{web_config.path}:{wc_root.line}: root element is <{wc_root.tag}>, not "
                            "<configuration>; file ignored")
            continue
        base = (site_name,) + _segments(vpath)
        new_layers = _layers_from(wc_root, web_config.path, base, 1 + len(base), counter)
        layers.extend(new_layers)
        extra_paths.append((site_name, vpath))

    for layer in layers:
        if layer.config_path and layer.config_path[0].lower() in site_names:
            site_name = site_names[layer.config_path[0].lower()]
            extra_paths.append((site_name, "/" + "/".join(layer.config_path[1:])))
        elif layer.config_path and not layer.is_web_config:
            _warn(warnings, f"{layer.file}:{layer.node.line}: <location path=\"{'/'.join(layer.config_path)}\"> "
                            "names no site in this file")

    builder = _EffectiveBuilder(layers, section_defaults, sites, pools, warnings)
    # One entry per configured path; IIS paths ignore case, the first spelling seen (the
    # applicationHost.config one) is kept.
    targets: dict[tuple[str, str], tuple[str, str]] = {}
    candidates = [(site.name, "/") for site in sites]
    for site in sites:
        for app in site.applications:
            candidates.append((site.name, app.path))
            candidates.extend((site.name, vdir.url_path) for vdir in app.virtual_directories)
    candidates.extend(extra_paths)
    for site_name, path in candidates:
        path = _norm_url(path)
        targets.setdefault((site_name.lower(), path.lower()), (site_name, path))
    effective = tuple(builder.build(site, path) for _, (site, path) in sorted(targets.items()))
    server = builder.build("", "/")
    freb_rules = tuple(_freb_rules(builder.layers))
    return IisConfig(
        sites=sites, app_pools=pools, effective=effective,
        global_isapi_filters=server.isapi_filters, warnings=tuple(dict.fromkeys(warnings)),
        server_defaults=server, freb_rules=freb_rules,
    )


def effective_for(config: IisConfig, site: str, url_path: str) -> EffectiveSettings:
    """The settings in force for ``url_path`` of ``site`` (a name, an id or ``W3SVC<id>``).

    Picks the deepest configured path that contains ``url_path`` (segment-wise, case-insensitive,
    as IIS matches paths). A site the config does not know gets the server-level settings.
    """
    found = config.site(site)
    name = found.name if found else site
    wanted = _segments(_norm_url(url_path))
    best: EffectiveSettings | None = None
    best_depth = -1
    for settings in config.effective:
        if settings.site.lower() != name.lower():
            continue
        segments = _segments(settings.path)
        if _is_prefix(_lower(segments), _lower(wanted)) and len(segments) > best_depth:
            best, best_depth = settings, len(segments)
    if best is not None:
        return best
    server = config.server_defaults or EffectiveSettings(site="", path="/")
    return replace(server, site=name, path=_norm_url(url_path))


def _freb_rules(layers: Sequence[_Layer]) -> list[tuple[str, str]]:
    """``(config path + rule path, statusCodes)`` for every traceFailedRequests rule, in merge order."""
    rules = []
    for layer in layers:
        for add in [node for section in layer.sections(TRACE_RULES) for node in section.all("add")]:
            failure = add.child("failureDefinitions")
            where = "/".join(layer.config_path)
            rule_path = add.get("path") or "*"
            rules.append((f"{where}/{rule_path}" if where else rule_path,
                          (failure.get("statusCodes") or "") if failure is not None else ""))
    return rules


def _deciding_elements(values: Mapping[str, tuple[_Merged, str]],
                       collections: Mapping[str, _Merged]) -> dict[str, Source]:
    """Value key → the element that set it last (the one in force), for values some layer set; a
    collection → the last element that changed it (an add, remove or clear)."""
    out: dict[str, Source] = {}
    for key, (merged, attribute) in values.items():
        entry = merged.attrs.get(attribute)
        if entry is not None:
            out[key] = entry[1]
    for key, merged in collections.items():
        if merged.collection_touched and merged.touched_by:
            out[key] = merged.touched_by[-1]
    return out


class _EffectiveBuilder:
    def __init__(self, layers: list[_Layer], section_defaults: dict[str, str], sites: Sequence[Site],
                 pools: Sequence[AppPool], warnings: list[str]) -> None:
        self.layers = sorted(layers, key=lambda l: (len(l.config_path), l.rank, l.order))
        self.section_defaults = section_defaults
        self.sites = {site.name.lower(): site for site in sites}
        self.warnings = warnings
        self._reported: set[tuple[str, int, str]] = set()

    def _applies(self, layer: _Layer, target: tuple[str, ...], app_roots: list[tuple[str, ...]]) -> bool:
        if not _is_prefix(layer.key, target):
            return False
        if not layer.inherit_in_child_apps:
            # Settings stop at the first application below the location's own path.
            for root in app_roots:
                if len(root) > len(layer.key) and _is_prefix(root, target) and _is_prefix(layer.key, root):
                    return False
        return True

    def _locked(self, section: str, layer: _Layer, applicable: list[_Layer]) -> str | None:
        """Why a web.config may not set ``section`` at its path, or None when it may."""
        mode = self.section_defaults.get(section) or SHIPPED_OVERRIDE_DEFAULTS.get(section, "Allow")
        why = f"overrideModeDefault=\"{mode}\" in <configSections>"
        for upper in applicable:
            if upper is layer:
                break
            if upper.override_mode and _is_prefix(upper.key, layer.key) \
                    and upper.sections(section):
                mode = upper.override_mode
                why = f"overrideMode=\"{mode}\" at {upper.file}:{upper.node.line}"
        return None if mode == "Allow" else why

    def merged(self, section: str, applicable: list[_Layer]) -> _Merged:
        merged = _Merged()
        merger = _Merger(self.warnings)
        for layer in applicable:
            nodes = layer.sections(section)
            if not nodes:
                continue
            node = nodes[0]
            key = (layer.file, node.line, section)
            if len(nodes) > 1 and key not in self._reported:
                self._reported.add(key)
                _warn(self.warnings, f"{layer.file}:{nodes[1].line}: system.webServer/{section} appears "
                                     f"{len(nodes)} times in one block; IIS rejects this (HTTP 500), all are "
                                     "merged in order here")
            if node.get("configSource") and ("configSource",) + key not in self._reported:
                self._reported.add(("configSource",) + key)
                _warn(self.warnings, f"{layer.file}:{node.line}: system.webServer/{section} is read from "
                                     f"configSource={node.get('configSource')!r}, which was not collected")
            if layer.is_web_config:
                why = self._locked(section, layer, applicable)
                if why:
                    if key not in self._reported:
                        self._reported.add(key)
                        _warn(self.warnings,
                              f"{layer.file}:{node.line}: system.webServer/{section} is locked ({why}); IIS "
                              "rejects this web.config with HTTP 500, its setting is ignored here")
                    continue
            for node in nodes:
                merger.apply(merged, node, layer, f"{layer.element_prefix}/{section}", section)
        return merged

    def build(self, site_name: str, url_path: str) -> EffectiveSettings:
        site = self.sites.get(site_name.lower())
        target = _lower(((site_name,) if site_name else ()) + _segments(url_path))
        app_roots = [_lower((site_name,) + _segments(app.path)) for app in (site.applications if site else ())]
        applicable = [layer for layer in self.layers if self._applies(layer, target, app_roots)]
        if not site_name:
            applicable = [layer for layer in applicable if not layer.config_path]

        application_path, app_pool = "/", ""
        if site:
            best = -1
            for app in site.applications:
                segs = _segments(app.path)
                if _is_prefix(_lower(segs), _lower(_segments(url_path))) and len(segs) > best:
                    best, application_path, app_pool = len(segs), app.path, app.app_pool

        anon = self.merged(ANONYMOUS, applicable)
        basic = self.merged(BASIC, applicable)
        digest = self.merged(DIGEST, applicable)
        windows = self.merged(WINDOWS, applicable)
        cert_ad = self.merged(CERT_AD, applicable)
        cert_iis = self.merged(CERT_IIS, applicable)
        access = self.merged(ACCESS, applicable)
        authz = self.merged(AUTHORIZATION, applicable)
        ipsec = self.merged(IP_SECURITY, applicable)
        dynip = self.merged(DYNAMIC_IP, applicable)
        filters = self.merged(ISAPI_FILTERS, applicable)
        handlers = self.merged(HANDLERS, applicable)
        providers = windows.child("providers")
        ext = windows.child("extendedProtection")
        persist = windows.value("authPersistNonNTLM")
        settings = EffectiveSettings(
            site=site_name,
            path=_norm_url(url_path),
            anonymous=AnonymousAuth(
                enabled=_bool(anon.value("enabled"), True),
                user_name=anon.value("userName", "IUSR") or "",
                password_present=secret_present(anon.value("password")),
                source=anon.source("userName", "enabled"),
                logon_method=anon.value("logonMethod") or "ClearText",
            ),
            windows=WindowsAuth(
                enabled=_bool(windows.value("enabled"), False),
                providers=(tuple(item.attrs.get("value", "") for item in providers.items)
                           if providers.collection_touched else ("Negotiate", "NTLM")),
                use_kernel_mode=_bool(windows.value("useKernelMode"), True),
                use_app_pool_credentials=_bool(windows.value("useAppPoolCredentials"), False),
                extended_protection=ext.value("tokenChecking") or "None",
                source=windows.source("enabled", "useKernelMode", "useAppPoolCredentials"),
                extended_protection_flags=ext.value("flags") or "None",
                auth_persist_non_ntlm=None if persist is None else _bool(persist, False),
                providers_configured=providers.collection_touched,
            ),
            basic=BasicAuth(
                enabled=_bool(basic.value("enabled"), False),
                realm=basic.value("realm") or "",
                default_logon_domain=basic.value("defaultLogonDomain") or "",
                logon_method=basic.value("logonMethod") or "ClearText",
                source=basic.source("enabled", "realm", "defaultLogonDomain", "logonMethod"),
            ),
            digest=DigestAuth(
                enabled=_bool(digest.value("enabled"), False),
                realm=digest.value("realm") or "",
                source=digest.source("enabled", "realm"),
            ),
            client_certificate=ClientCertificateAuth(
                iis_mapping_enabled=_bool(cert_iis.value("enabled"), False),
                one_to_one_mappings=len(cert_iis.child("oneToOneMappings").items),
                many_to_one_mappings=len(cert_iis.child("manyToOneMappings").items),
                ad_mapping_enabled=_bool(cert_ad.value("enabled"), False),
                ssl_flags=access.value("sslFlags") or "",
                source=cert_iis.source("enabled") or cert_ad.source("enabled"),
                one_to_one_enabled=_bool(cert_iis.value("oneToOneCertificateMappingsEnabled"), True),
                many_to_one_enabled=_bool(cert_iis.value("manyToOneCertificateMappingsEnabled"), True),
                logon_method=cert_iis.value("logonMethod") or "ClearText",
                ssl_flags_source=access.source("sslFlags"),
            ),
            authorization=tuple(
                AuthorizationRule(access_type=item.attrs.get("accessType", "Allow"),
                                  users=item.attrs.get("users", ""), roles=item.attrs.get("roles", ""),
                                  verbs=item.attrs.get("verbs", ""), source=item.source)
                for item in authz.items),
            isapi_filters=tuple(
                IsapiFilter(name=item.attrs.get("name", ""), path=item.attrs.get("path", ""),
                            enabled=_bool(item.attrs.get("enabled"), True),
                            scope="global" if not item.layer.config_path else item.layer.config_path[0],
                            source=item.source)
                for item in filters.items),
            handlers=tuple(
                HandlerMapping(name=item.attrs.get("name", ""), path=item.attrs.get("path", ""),
                               verb=item.attrs.get("verb", "*"), modules=item.attrs.get("modules", ""),
                               script_processor=item.attrs.get("scriptProcessor", ""),
                               resource_type=item.attrs.get("resourceType", ""), source=item.source,
                               type=item.attrs.get("type", ""), require_access=item.attrs.get("requireAccess", ""),
                               pre_condition=item.attrs.get("preCondition", ""))
                for item in handlers.items),
            ip_security=IpSecurity(
                allow_unlisted=_bool(ipsec.value("allowUnlisted"), True),
                deny_action=ipsec.value("denyAction") or "Forbidden",
                rules=tuple(IpRule(allowed=_bool(item.attrs.get("allowed"), False),
                                   ip_address=item.attrs.get("ipAddress", ""),
                                   subnet_mask=item.attrs.get("subnetMask", ""),
                                   domain_name=item.attrs.get("domainName", ""), source=item.source)
                            for item in ipsec.items),
                dynamic_enabled=(_bool(dynip.child("denyByConcurrentRequests").value("enabled"), False)
                                 or _bool(dynip.child("denyByRequestRate").value("enabled"), False)),
                dynamic_deny_action=dynip.value("denyAction") or "Forbidden",
                source=ipsec.source("allowUnlisted", "denyAction") or dynip.source("denyAction"),
            ),
            application_path=application_path,
            app_pool=app_pool,
            handlers_access_policy=handlers.value("accessPolicy") or "Read",
            config_files=tuple(dict.fromkeys(layer.file for layer in applicable)),
            sources=_deciding_elements({
                "anonymous.enabled": (anon, "enabled"), "anonymous.user_name": (anon, "userName"),
                "anonymous.logon_method": (anon, "logonMethod"),
                "windows.enabled": (windows, "enabled"), "windows.use_kernel_mode": (windows, "useKernelMode"),
                "windows.use_app_pool_credentials": (windows, "useAppPoolCredentials"),
                "windows.extended_protection": (ext, "tokenChecking"),
                "windows.auth_persist_non_ntlm": (windows, "authPersistNonNTLM"),
                "basic.enabled": (basic, "enabled"), "basic.logon_method": (basic, "logonMethod"),
                "digest.enabled": (digest, "enabled"),
                "client_certificate.iis_mapping_enabled": (cert_iis, "enabled"),
                "client_certificate.ad_mapping_enabled": (cert_ad, "enabled"),
                "client_certificate.ssl_flags": (access, "sslFlags"),
                "ip_security.allow_unlisted": (ipsec, "allowUnlisted"), "ip_security.deny_action": (ipsec, "denyAction"),
                "ip_security.dynamic_deny_action": (dynip, "denyAction"),
                "ip_security.dynamic_concurrent": (dynip.child("denyByConcurrentRequests"), "enabled"),
                "ip_security.dynamic_rate": (dynip.child("denyByRequestRate"), "enabled"),
                "handlers.access_policy": (handlers, "accessPolicy"),
            }, collections={"windows.providers": providers, "authorization": authz, "isapi_filters": filters,
                            "handlers": handlers, "ip_security.rules": ipsec}),
        )
        return settings


@dataclass(frozen=True)
class SharedConfiguration:
    """What ``redirection.config`` says: with ``enabled`` IIS reads its configuration from ``path``
    (usually a UNC share), not from the local applicationHost.config."""

    enabled: bool
    path: str
    source: Source | None = None


def parse_redirection_config(text: str | bytes, path: str) -> SharedConfiguration:
    """The ``<configurationRedirection enabled=… path=…>`` element of redirection.config.

    Only ``enabled`` and ``path`` are read; ``userName``/``password`` (the share credentials, often
    encrypted) are never looked at, so they cannot reach a finding. A file without the element means
    shared configuration is off.
    """
    root = parse_xml(text, path, max_bytes=MAX_WEB_CONFIG_BYTES)
    if root.tag != "configuration":
        raise InputError(f"root element is <{root.tag}>, expected <configuration>", path=path, line=root.line)
    element = root.child("configurationRedirection")
    if element is None:
        return SharedConfiguration(enabled=False, path="")
    return SharedConfiguration(enabled=_bool(element.get("enabled"), False), path=str(element.get("path") or ""),
                               source=Source(path, element.line))
