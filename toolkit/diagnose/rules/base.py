"""What every rule gets (:class:`RuleContext`) and the helpers that turn its conclusions into a Finding.

A rule is a function ``(ctx: RuleContext) -> list[Finding]``. ``ctx.groups`` are the terminal 401
groups of one host, one site and one substatus that no earlier rule has explained; ``ctx.all_groups``
are all of them. A finding says which groups it explains (``explains``); groups nobody explains end
up in an explicit "unexplained" finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.diagnose.evidence import HostEvidence, LogGroup
from toolkit.diagnose.model import (
    Confidence,
    EvidenceItem,
    EvidenceSource,
    Finding,
    Fix,
    Level,
    Severity,
    lower_level,
)
from toolkit.parsers.types import AppPool, EffectiveSettings, FrebTrace, LogonFailure, Site, Source

#: Plain words for each evidence key, used in ``missing_evidence``.
EVIDENCE_NAMES = {
    "facts": "host facts (Get-HostFact)",
    "config": "IIS configuration (Get-IisConfig)",
    "config-warnings": "parts of the IIS configuration",
    "shared-config": "the IIS configuration in force (shared configuration)",
    "w3c": "W3C logs (Get-IisW3CLog)",
    "freb": "Failed Request Tracing (Get-IisFailedRequestTrace)",
    "acl": "content ACLs (Get-IisContentAcl)",
    "rights": "user rights and local accounts (Get-LocalUserRight)",
    "spn": "SPN registrations (Get-IisSpn)",
    "events": "authentication events (Get-AuthEventLog)",
    "security-log": "the Security event log (4625 records)",
}


@dataclass(frozen=True)
class FleetContext:
    """What a rule may need to know about the other hosts."""

    #: lower-case SPN (no port) → accounts holding it, fleet-wide
    spn_owners: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: host → clock offset in seconds against the reference (None = unknown)
    clock_offsets: Mapping[str, float | None] = field(default_factory=dict)
    clock_reference: str = ""
    #: Kerberos' default "maximum tolerance for computer clock synchronization"
    max_skew_s: float = 300.0
    #: what the domain controllers answered (toolkit.directory.facts.DirectoryFacts), None without a directory
    directory: Any = None

    @property
    def has_directory(self) -> bool:
        return self.directory is not None and self.directory.usable


@dataclass
class RuleContext:
    host: HostEvidence
    site: str
    substatus: int
    groups: list[LogGroup]
    all_groups: list[LogGroup]
    fleet: FleetContext

    # --- configuration -------------------------------------------------------------------------
    @property
    def site_obj(self) -> Site | None:
        if self.host.config is None:
            return None
        for site in self.host.config.sites:
            if site.name.lower() == self.site.lower():
                return site
        return None

    def uris(self, groups: Iterable[LogGroup] | None = None) -> list[str]:
        seen: dict[str, int] = {}
        for g in groups if groups is not None else self.groups:
            for uri, n in g.top_uris:
                seen[uri] = seen.get(uri, 0) + n
            for s in g.samples:
                seen.setdefault(s.uri, 0)
        return [u for u, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])) if u]

    def settings_for(self, url_path: str) -> EffectiveSettings | None:
        config = self.host.config
        if config is None:
            return None
        try:
            from toolkit.parsers.iisconfig import effective_for
        except ImportError:
            effective_for = None
        if effective_for is not None:
            try:
                return effective_for(config, self.site, url_path or "/")
            except Exception:  # noqa: BLE001 - fall back to the parsed effective entries
                pass
        best: EffectiveSettings | None = None
        target = (url_path or "/").lower()
        for eff in config.effective:
            if eff.site.lower() != self.site.lower():
                continue
            path = eff.path.rstrip("/").lower() or ""
            if target == path or target.startswith(path + "/") or path == "":
                if best is None or len(eff.path.rstrip("/")) > len(best.path.rstrip("/")):
                    best = eff
        return best

    def scope(self, groups: Iterable[LogGroup] | None = None) -> str:
        """The configuration path that governs the failing URLs (the most requested one)."""
        uris = self.uris(groups)
        if not uris:
            return "/"
        settings = self.settings_for(uris[0])
        return settings.path if settings is not None else "/"

    def settings(self, groups: Iterable[LogGroup] | None = None) -> EffectiveSettings | None:
        uris = self.uris(groups)
        return self.settings_for(uris[0] if uris else "/")

    def pool(self, url_path: str | None = None) -> AppPool | None:
        """The application pool serving ``url_path`` (default: the failing URLs)."""
        config, site = self.host.config, self.site_obj
        if config is None or site is None:
            return None
        target = (url_path or (self.uris() or ["/"])[0]).lower()
        best_app = None
        for app in site.applications:
            path = app.path.rstrip("/").lower()
            if target == path or target.startswith(path + "/") or path == "":
                if best_app is None or len(app.path.rstrip("/")) > len(best_app.path.rstrip("/")):
                    best_app = app
        if best_app is None:
            return None
        for pool in config.app_pools:
            if pool.name.lower() == best_app.app_pool.lower():
                return pool
        return AppPool(name=best_app.app_pool)

    def location(self, scope: str) -> str:
        """appcmd's config path: ``Site`` or ``Site/app``."""
        return self.site if scope in ("", "/") else f"{self.site}{scope}"

    # --- other evidence ------------------------------------------------------------------------
    def freb(self, substatus: int | None = None) -> list[FrebTrace]:
        site = self.site_obj
        out = []
        for trace in self.host.freb:
            if site is not None and trace.site_id is not None and trace.site_id != site.id:
                continue
            if trace.status_code != 401:
                continue
            if substatus is not None and trace.substatus not in (None, substatus):
                continue
            out.append(trace)
        return sorted(out, key=lambda t: t.file)

    def freb_missing_reason(self) -> str | None:
        """Why there is no trace for this site's failures (None when there is one)."""
        if self.freb(self.substatus):
            return None
        if "freb" in self.host.missing:
            return self.host.missing["freb"]
        site = self.site_obj
        if site is not None and not site.freb_enabled:
            return f"Failed Request Tracing is not enabled for site {self.site}"
        return f"no Failed Request Trace for a 401.{self.substatus} on site {self.site}"

    def failures(self, accept: Callable[[LogonFailure], bool] | None = None) -> list[LogonFailure]:
        return sorted((f for f in self.host.logon_failures if accept is None or accept(f)),
                      key=lambda f: (f.record_id or 0, f.time_utc))

    @property
    def security_log_readable(self) -> bool:
        return not ({"events", "security-log"} & set(self.host.missing))


# --- finding construction -------------------------------------------------------------------------

def source_of(src: Source | None) -> EvidenceSource | None:
    if src is None:
        return None
    return EvidenceSource(file=src.file, line=src.line, element=src.element)


def log_evidence(host: str, groups: Sequence[LogGroup], max_samples: int = 3) -> list[EvidenceItem]:
    """A count line per group plus up to ``max_samples`` cited rows each."""
    items = []
    for g in groups:
        first = g.samples[0] if g.samples else None
        items.append(EvidenceItem("log", host, f"401 {g.substatus} {g.win32} x{g.terminal} terminal"
                                  + (f" ({g.handshake} handshake)" if g.handshake else ""),
                                  EvidenceSource(file=first.source, line=first.line) if first else None, rank=0))
        for s in g.samples[:max_samples]:
            who = s.user if not s.anonymous else "anonymous"
            items.append(EvidenceItem("log", host, f"{s.time} {s.c_ip} {who} {s.uri} -> 401.{g.substatus} "
                                                   f"win32 {g.win32}".strip(),
                                      EvidenceSource(file=s.source, line=s.line)))
    return items


def event_evidence(host: str, failures: Sequence[LogonFailure], limit: int = 3) -> list[EvidenceItem]:
    items = []
    for f in failures[:limit]:
        user = f"{f.target_domain}\\{f.target_user}" if f.target_domain else f.target_user
        items.append(EvidenceItem(
            "event", host,
            f"4625 {f.time_utc} {user} Status {f.status} SubStatus {f.sub_status} "
            f"({(f.sub_status_name if f.reason == f.sub_status else f.status_name) or f.reason}) "
            f"logon type {f.logon_type}",
            EvidenceSource(file="Security", record_id=f.record_id)))
    if len(failures) > limit:
        items.append(EvidenceItem("event", host, f"... and {len(failures) - limit} more 4625 records like these",
                                  rank=2))
    return items


def make_finding(ctx: RuleContext, *, cause: str, title: str, severity: Severity, groups: Sequence[LogGroup],
                 level: Level, reason: str, evidence: Iterable[EvidenceItem], explanation: str,
                 fix: Fix | None, uses: Iterable[str], extra_missing: Iterable[str] = (),
                 scope: str | None = None, substatus: int | None = None) -> Finding:
    """Build a finding; evidence keys in ``uses`` that the host lacks lower the confidence, one notch each."""
    missing = []
    uses = list(uses)
    if "config" in uses:
        uses.append("shared-config")  # a finding read from the local config is in doubt when IIS reads a shared one
    for key in dict.fromkeys(uses):
        if key in ctx.host.missing:
            missing.append(f"{EVIDENCE_NAMES.get(key, key)}: {ctx.host.missing[key]}")
    missing.extend(extra_missing)
    if missing:
        level = lower_level(level, min(len(missing), 2))
        reason = f"{reason}; lowered because evidence is missing"
    sub = substatus if substatus is not None else ctx.substatus
    items = log_evidence(ctx.host.name, groups) + list(evidence)
    return Finding(
        cause=cause, title=title, substatus=f"401.{sub}", severity=severity,
        confidence=Confidence(level, reason), hosts=(ctx.host.name,), site=ctx.site,
        scope=scope if scope is not None else ctx.scope(groups),
        terminal_401=sum(g.terminal for g in groups), evidence=tuple(items), explanation=explanation,
        fix=fix, missing_evidence=tuple(missing),
        explains=frozenset((g.substatus, g.win32) for g in groups),
    )


def q(value: str) -> str:
    """Quote for PowerShell/cmd command lines shown to the admin (double quotes, inner ones doubled)."""
    return '"' + str(value).replace('"', '""') + '"'


def config_item(host: str, summary: str, src: Source | None) -> EvidenceItem:
    return EvidenceItem("config", host, summary, source_of(src))


def deciding_items(host: str, settings: EffectiveSettings, what: str,
                   values: Sequence[tuple[str, str, Any]], fallback: Source | None = None) -> list[EvidenceItem]:
    """Configuration evidence citing, for each value, the element that decided it.

    ``values`` are ``(key in settings.sources, label, value)``. Values decided by the same element share
    one item citing it; values no element set are listed as schema defaults, citing nothing. Settings
    built without deciding elements (``sources`` empty) cite ``fallback`` as before.
    """
    if not settings.sources:
        text = " ".join(f"{label}={value}" for _key, label, value in values)
        return [config_item(host, f"{what} {text}", fallback)]
    by_element: dict[Source | None, list[str]] = {}
    for key, label, value in values:
        by_element.setdefault(settings.sources.get(key), []).append(f"{label}={value}")
    items = []
    for source, parts in by_element.items():
        suffix = "" if source is not None else " (schema defaults: no element sets them)"
        items.append(config_item(host, f"{what} {' '.join(parts)}{suffix}", source))
    return items


def any_of(groups: Iterable[LogGroup], codes: Iterable[int]) -> list[LogGroup]:
    wanted = set(codes)
    return [g for g in groups if g.win32 in wanted]


Rule = Callable[[RuleContext], list[Finding]]


def describe(value: Any) -> str:
    return "(empty: the application pool identity)" if value == "" else str(value)
