"""Just enough of applicationHost.config for the lab to find what collectors enumerate.

The collectors are raw (they ship files, not interpretations), so the lab only needs the site list,
each site's applications, virtual directories, log and FREB folders, and the app pools' identities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from defusedxml import ElementTree

DEFAULT_LOG_DIR = "%SystemDrive%\\inetpub\\logs\\LogFiles"
DEFAULT_FREB_DIR = "%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles"


@dataclass(frozen=True)
class VirtualDir:
    site: str
    application_path: str
    virtual_path: str  # full URL path, e.g. "/app/docs"
    physical_path: str
    user_name: str = ""


@dataclass(frozen=True)
class Site:
    id: int
    name: str
    log_directory: str
    freb_directory: str
    vdirs: tuple[VirtualDir, ...] = ()


@dataclass(frozen=True)
class AppPool:
    name: str
    identity_type: str = "ApplicationPoolIdentity"
    user_name: str = ""


@dataclass
class AppHostSummary:
    sites: list[Site] = field(default_factory=list)
    pools: list[AppPool] = field(default_factory=list)
    default_log_directory: str = DEFAULT_LOG_DIR
    default_freb_directory: str = DEFAULT_FREB_DIR
    central_log_directory: str = ""


def _join(app_path: str, vdir_path: str) -> str:
    if vdir_path in ("", "/"):
        return app_path or "/"
    return (app_path.rstrip("/") + "/" + vdir_path.strip("/")) if app_path != "/" else "/" + vdir_path.strip("/")


def summarise(text: str) -> AppHostSummary:
    """Raises ``ElementTree.ParseError`` (or a defusedxml error) on a broken file; callers report it."""
    root = ElementTree.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    summary = AppHostSummary()
    sites_node = root.find("system.applicationHost/sites")
    if sites_node is not None:
        defaults = sites_node.find("siteDefaults")
        if defaults is not None:
            log = defaults.find("logFile")
            if log is not None and log.get("directory"):
                summary.default_log_directory = log.get("directory") or DEFAULT_LOG_DIR
            freb = defaults.find("traceFailedRequestsLogging")
            if freb is not None and freb.get("directory"):
                summary.default_freb_directory = freb.get("directory") or DEFAULT_FREB_DIR
        for site in sites_node.findall("site"):
            name = site.get("name", "")
            log = site.find("logFile")
            freb = site.find("traceFailedRequestsLogging")
            vdirs = []
            for app in site.findall("application"):
                app_path = app.get("path", "/")
                for vdir in app.findall("virtualDirectory"):
                    vdirs.append(VirtualDir(site=name, application_path=app_path,
                                            virtual_path=_join(app_path, vdir.get("path", "/")),
                                            physical_path=vdir.get("physicalPath", ""),
                                            user_name=vdir.get("userName", "")))
            summary.sites.append(Site(
                id=int(site.get("id", "0") or 0), name=name,
                log_directory=(log.get("directory") if log is not None and log.get("directory") else summary.default_log_directory),
                freb_directory=(freb.get("directory") if freb is not None and freb.get("directory") else summary.default_freb_directory),
                vdirs=tuple(vdirs)))
    central = root.find("system.applicationHost/log/centralW3CLogFile")
    if central is not None and central.get("directory"):
        summary.central_log_directory = central.get("directory") or ""
    pools = root.find("system.applicationHost/applicationPools")
    if pools is not None:
        for pool in pools.findall("add"):
            model = pool.find("processModel")
            summary.pools.append(AppPool(
                name=pool.get("name", ""),
                identity_type=(model.get("identityType", "ApplicationPoolIdentity") if model is not None else "ApplicationPoolIdentity"),
                user_name=(model.get("userName", "") if model is not None else "")))
    return summary
