"""Cross-server views: merged findings, configuration drift, SPN duplicates/mismatches, clock outliers,
and the server × site matrix of terminal 401 rates.

Drift ranks attributes by how well they separate the servers with terminal 401s on a site from the
servers without: an attribute whose odd value sits on exactly the failing servers scores 1.0.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from toolkit.diagnose.evidence import HostEvidence, terminal_groups
from toolkit.diagnose.model import (
    ClockOutlier,
    Confidence,
    DriftItem,
    EvidenceItem,
    Finding,
    Fix,
    LEVEL_ORDER,
    MatrixCell,
    SpnDuplicate,
    SpnMismatch,
)
from toolkit.diagnose.rules.kerberos import host_names, same_principal, spn_key, spns_on, wanted_spns
from toolkit.diagnose.security import (
    check_right,
    is_custom_account,
    is_domain_account,
    read_access,
    short_name,
)
from toolkit.parsers.types import AppPool, EffectiveSettings, Site

#: Clock offsets above this are listed as outliers (Kerberos' own limit, 300 s, is stricter for rules).
CLOCK_OUTLIER_S = 120.0
MAX_EVIDENCE_PER_HOST = 12


# --- time ------------------------------------------------------------------------------------------

def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


def clock_offsets(hosts: Mapping[str, HostEvidence], collected_utc: str | dt.datetime | None) \
        -> tuple[dict[str, float | None], str]:
    """Each host's ``utc_now`` minus the reference: the fleet median with 3+ hosts, else the collection time."""
    times = {name: parse_time((h.facts or {}).get("utc_now")) for name, h in hosts.items()}
    known = {n: t for n, t in times.items() if t is not None}
    reference: dt.datetime | None = None
    label = ""
    if len(known) >= 3:
        stamps = sorted(t.timestamp() for t in known.values())
        reference = dt.datetime.fromtimestamp(statistics.median(stamps), dt.timezone.utc)
        label = "fleet median"
    elif collected_utc is not None:
        reference = collected_utc if isinstance(collected_utc, dt.datetime) else parse_time(collected_utc)
        label = "collection time"
    offsets: dict[str, float | None] = {}
    for name, t in times.items():
        offsets[name] = None if (t is None or reference is None) else (t - reference).total_seconds()
    return offsets, label


def clock_outliers(hosts: Mapping[str, HostEvidence], offsets: Mapping[str, float | None], label: str) \
        -> list[ClockOutlier]:
    return [ClockOutlier(name, str((hosts[name].facts or {}).get("utc_now")), off, label)
            for name, off in sorted(offsets.items()) if off is not None and abs(off) > CLOCK_OUTLIER_S]


# --- SPNs ------------------------------------------------------------------------------------------

def spn_owners(hosts: Mapping[str, HostEvidence]) -> tuple[dict[str, frozenset[str]], dict[str, set[str]]]:
    """Fleet-wide: lower-case SPN → accounts holding it, and → hosts whose queries reported it."""
    owners: dict[str, dict[str, str]] = defaultdict(dict)
    seen_by: dict[str, set[str]] = defaultdict(set)
    for name, host in hosts.items():
        for record in host.spns:
            key = spn_key(record.spn)
            owner_key = (record.account_dn or short_name(record.account)).lower()
            owners[key].setdefault(owner_key, record.account)
            seen_by[key].add(name)
    return {k: frozenset(v.values()) for k, v in owners.items()}, seen_by


def spn_duplicates(owners: Mapping[str, frozenset[str]], seen_by: Mapping[str, set[str]]) -> list[SpnDuplicate]:
    return [SpnDuplicate(spn=k.upper().split("/", 1)[0] + "/" + k.split("/", 1)[1], accounts=tuple(sorted(v)),
                         hosts=tuple(sorted(seen_by.get(k, ()))))
            for k, v in sorted(owners.items()) if k.startswith("http/") and len(v) > 1]


def _root_settings(host: HostEvidence, site: str) -> EffectiveSettings | None:
    if host.config is None:
        return None
    candidates = [e for e in host.config.effective if e.site.lower() == site.lower()]
    root = [e for e in candidates if e.path in ("", "/")]
    if root:
        return root[0]
    return min(candidates, key=lambda e: len(e.path)) if candidates else None


def _site(host: HostEvidence, name: str) -> Site | None:
    if host.config is None:
        return None
    return next((s for s in host.config.sites if s.name.lower() == name.lower()), None)


def _root_pool(host: HostEvidence, site: Site) -> AppPool | None:
    if host.config is None:
        return None
    root = next((a for a in site.applications if a.path in ("", "/")), None)
    if root is None:
        return None
    return next((p for p in host.config.app_pools if p.name.lower() == root.app_pool.lower()), AppPool(root.app_pool))


def spn_mismatches(hosts: Mapping[str, HostEvidence], owners: Mapping[str, frozenset[str]]) -> list[SpnMismatch]:
    """Kerberos setups that cannot work, whatever the logs say."""
    out = []
    for name, host in sorted(hosts.items()):
        if host.config is None or not host.spn_queries:
            continue
        for site in host.config.sites:
            settings = _root_settings(host, site.name)
            if settings is None or not settings.windows.enabled or not any(
                    p.lower().startswith("negotiate") for p in settings.windows.providers):
                continue
            pool = _root_pool(host, site)
            w = settings.windows
            machine_decrypts = w.use_kernel_mode and not w.use_app_pool_credentials
            for spn in wanted_spns(host, site.name):  # the names clients ask for this site, as the rules do
                holders = owners.get(spn, frozenset())
                if is_custom_account(pool) and is_domain_account(pool.user_name, host.facts):
                    # the holders come from the directory when it answered (the host's setspn view otherwise)
                    on_pool = spn in spns_on(host, pool.user_name) or any(
                        same_principal(host, h, pool.user_name) for h in holders)
                    if on_pool and machine_decrypts:
                        out.append(SpnMismatch(name, site.name, spn, pool.user_name,
                                               "SPN is on the pool account but kernel-mode auth decrypts with the "
                                               "machine account (useAppPoolCredentials=false)"))
                    elif not on_pool and not machine_decrypts and holders:
                        out.append(SpnMismatch(name, site.name, spn, ", ".join(sorted(holders)),
                                               f"the pool account {pool.user_name} decrypts tickets, but the SPN is "
                                               f"registered on another account"))
                elif holders and machine_decrypts and host.machine_account and not any(
                        same_principal(host, h, host.machine_account) for h in holders):
                    out.append(SpnMismatch(name, site.name, spn, ", ".join(sorted(holders)),
                                           "the site decrypts with the machine account, but the SPN is registered "
                                           "on another account"))
    return out


# --- drift -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Farm:
    """Sites on several servers that serve the same thing: one farm, compared in drift."""

    label: str                       # the site name most members use
    identity: str                    # what makes them one farm (a host-header binding, or bindings + content)
    members: tuple[tuple[str, str], ...]  # (host, site), sorted


def _bindings(site: Site) -> tuple[set[str], set[str]]:
    """(host-header bindings as ``scheme://host:port``, bindings without a host header as ``scheme:port``)."""
    named, plain = set(), set()
    for b in site.bindings:
        if b.protocol.lower() not in ("http", "https"):
            continue
        parts = b.binding_information.split(":", 2)
        port = parts[1] if len(parts) >= 2 else ""
        if b.host_header:
            named.add(f"{b.protocol.lower()}://{b.host_header.lower()}:{port}")
        else:
            plain.add(f"{b.protocol.lower()}:{port}")
    return named, plain


def _content(site: Site) -> str:
    """The root application's root physical path, normalised for comparison (empty when unknown)."""
    for app in site.applications:
        if app.path.rstrip("/") == "":
            for vdir in app.virtual_directories:
                if vdir.path.rstrip("/") == "":
                    return vdir.physical_path.replace("/", "\\").rstrip("\\").lower()
    return ""


def site_farms(hosts: Mapping[str, HostEvidence]) -> list[Farm]:
    """Group sites across servers into farms by what they serve, not by name.

    Two sites are one farm when they share a host-header binding (scheme, host, port), or, when neither
    has a host header, when they have the same name, the same bindings (scheme and port) and the same
    content (root physical path). Two unrelated sites that share a name ("www" for two brands) are two
    farms; a site renamed on one server but bound to the same host name stays in its farm. Only farms
    with members on several servers are returned.
    """
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_key: dict[str, tuple[str, str]] = {}
    identity: dict[tuple[str, str], str] = {}
    for name, host in sorted(hosts.items()):
        if host.config is None:
            continue
        for site in host.config.sites:
            node = (name, site.name)
            parent.setdefault(node, node)
            named, plain = _bindings(site)
            if named:
                keys = [f"binding:{b}" for b in sorted(named)]
                identity[node] = sorted(named)[0]
            else:
                content = _content(site)
                keys = [f"site:{site.name.lower()}|{','.join(sorted(plain))}|{content}"]
                identity[node] = f"{','.join(sorted(plain)) or 'no http binding'} {content or '(content unknown)'}"
            for key in keys:
                if key in by_key:
                    union(node, by_key[key])
                else:
                    by_key[key] = node
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for node in parent:
        groups[find(node)].append(node)
    farms = []
    for root, members in groups.items():
        if len({h for h, _ in members}) < 2:
            continue
        label = Counter(s for _, s in members).most_common(1)[0][0]
        farms.append(Farm(label, identity[root], tuple(sorted(members))))
    return sorted(farms, key=lambda f: (f.label.lower(), f.identity))


def _local(host: HostEvidence, name: str) -> str:
    """``WEB07\\webanon`` on WEB07 → ``.\\webanon``, so the same local setup compares equal across servers."""
    computer = str((host.facts or {}).get("computer_name") or host.name)
    if "\\" in name and name.split("\\", 1)[0].lower() in (computer.lower(), host.name.lower()):
        return ".\\" + name.split("\\", 1)[1]
    return name


def fingerprint(host: HostEvidence, site_name: str) -> dict[str, str]:
    """Auth-relevant state of one site on one server, as attribute → printable value.

    Local account names are written ``.\\name`` so that servers set up alike compare equal.
    """
    fp: dict[str, str] = {}
    site = _site(host, site_name)
    settings = _root_settings(host, site_name)
    if settings is not None:
        a, w, c, ip = settings.anonymous, settings.windows, settings.client_certificate, settings.ip_security
        fp.update({
            "anonymous.enabled": str(a.enabled),
            "anonymous.user_name": _local(host, a.user_name) if a.user_name else "(pool identity)",
            "windows.enabled": str(w.enabled),
            "windows.providers": ",".join(w.providers),
            "windows.use_kernel_mode": str(w.use_kernel_mode),
            "windows.use_app_pool_credentials": str(w.use_app_pool_credentials),
            "windows.extended_protection": w.extended_protection,
            "basic.enabled": str(settings.basic.enabled),
            "digest.enabled": str(settings.digest.enabled),
            "client_certificate.iis_mapping_enabled": str(c.iis_mapping_enabled),
            "client_certificate.ad_mapping_enabled": str(c.ad_mapping_enabled),
            "client_certificate.ssl_flags": c.ssl_flags or "-",
            "authorization": ";".join(f"{r.access_type}:{r.users or '-'}:{r.roles or '-'}"
                                      for r in settings.authorization) or "-",
            "isapi_filters": ",".join(sorted(f.name for f in settings.isapi_filters if f.enabled)) or "-",
            "handlers.wildcard": ",".join(h.name for h in settings.handlers if h.is_wildcard) or "-",
            "ip_security.deny_action": ip.deny_action,
            "ip_security.allow_unlisted": str(ip.allow_unlisted),
            "ip_security.deny_rules": str(sum(1 for r in ip.rules if not r.allowed)),
            "ip_security.dynamic": f"{ip.dynamic_enabled}:{ip.dynamic_deny_action}",
        })
    pool = _root_pool(host, site) if site is not None else None
    anon_identity = None
    if pool is not None:
        fp["app_pool.identity_type"] = pool.identity_type
        fp["app_pool.user_name"] = _local(host, pool.user_name or pool.identity)
    if settings is not None and settings.anonymous.enabled:
        anon_identity = (pool.identity if pool else None) if settings.anonymous.user_name == "" \
            else settings.anonymous.user_name
    root_content = next((c for c in host.content if c.site.lower() == site_name.lower() and c.url_path == "/"), None)
    if root_content is not None and root_content.sd is not None:
        if anon_identity:
            answer = read_access(root_content.sd, anon_identity, host.groups)
            fp["content.anonymous_read"] = str(bool(answer and answer.read))
        if pool is not None:
            answer = read_access(root_content.sd, pool.identity, host.groups)
            fp["content.pool_read"] = str(bool(answer and answer.read))
    if root_content is not None and root_content.share_sd is not None and anon_identity:
        answer = read_access(root_content.share_sd, anon_identity, host.groups)
        fp["content.share_anonymous_read"] = str(bool(answer and answer.read))
    if host.rights is not None and anon_identity:
        deny = check_right(anon_identity, "SeDenyNetworkLogonRight", host.rights, host.groups)
        allow = check_right(anon_identity, "SeNetworkLogonRight", host.rights, host.groups)
        fp["rights.anonymous_network_logon"] = ("denied via " + (deny.via or "?")) if deny.holds else \
            ("granted" if allow.holds else "not granted")
    if anon_identity:
        for user in host.users:
            if short_name(str(user.get("name") or "")) == short_name(anon_identity):
                fp["anonymous.account_state"] = ("locked" if user.get("locked_out") else
                                                 "disabled" if user.get("enabled") is False else
                                                 "password expired" if user.get("password_expired") else "ok")
    if host.spn_queries:
        wanted = [f"http/{n}" for n in host_names(host, site_name) if n != host.name.lower()]
        accounts = sorted({r.account for r in host.spns if spn_key(r.spn) in wanted})
        fp["spn.http"] = ",".join(accounts) or "none"
    if host.crash_on_audit_fail is not None:
        fp["security.crash_on_audit_fail"] = str(host.crash_on_audit_fail)
    return fp


def drift(hosts: Mapping[str, HostEvidence], failing: Mapping[tuple[str, str], int]) -> list[DriftItem]:
    """Differences between the servers of each multi-server site, best separators first.

    ``failing`` maps (host, site) → terminal 401 count.
    """
    items: list[DriftItem] = []
    farms = site_farms(hosts)
    shared = Counter(f.label.lower() for f in farms)
    for farm in farms:
        cluster, label = list(farm.members), farm.label
        # the farm's identity is named only when another farm shares its site name
        where = label if shared[label.lower()] == 1 else f"{label} [{farm.identity}]"
        prints = {h: fingerprint(hosts[h], s) for h, s in cluster}
        bad = {h for h, s in cluster if failing.get((h, s), 0) > 0}
        members = sorted(prints)
        attributes = sorted({k for fp in prints.values() for k in fp})
        for attr in attributes:
            # Servers whose evidence lacks the attribute are left out: missing evidence is not drift.
            known = [h for h in members if attr in prints[h]]
            values: dict[str, set[str]] = defaultdict(set)
            for h in known:
                values[prints[h][attr]].add(h)
            if len(values) < 2:
                continue
            best = None
            for value, group in sorted(values.items()):
                if len(group) * 2 > len(known):
                    continue  # a majority value is "the norm", not the odd one out
                union = group | bad
                score = len(group & bad) / len(union) if union else 0.0
                key = (score, -len(group), value)
                if best is None or key > best[0]:
                    best = (key, value, group)
            if best is None:  # exact halves: the side with the failures is the odd one
                value, group = sorted(values.items(), key=lambda kv: (-len(kv[1] & bad), kv[0]))[0]
                union = group | bad
                best = ((len(group & bad) / len(union) if union else 0.0, -len(group), value), value, group)
            (score, _, _), value, group = best
            others = [h for h in known if h not in group]
            others_value = Counter(prints[h][attr] for h in others).most_common(1)[0][0]
            who = ", ".join(sorted(group))
            summary = (f"{who} {'differs' if len(group) == 1 else 'differ'} from the other {len(others)} on "
                       f"{where}: {attr}={value} (others: {others_value})")
            items.append(DriftItem(site=label, attribute=attr, hosts=tuple(sorted(group)), value=value,
                                   others_value=others_value, others=tuple(others), score=score, summary=summary,
                                   farm=farm.identity))
    return sorted(items, key=lambda d: (-d.score, d.site, d.attribute))


# --- merging ---------------------------------------------------------------------------------------

def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Same cause, site, scope and substatus on several hosts → one finding listing the hosts."""
    buckets: dict[tuple[str, str, str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        buckets[(f.cause, f.site.lower(), f.scope.lower(), f.substatus)].append(f)
    merged = []
    for group in buckets.values():
        group.sort(key=lambda f: f.hosts)
        if len(group) == 1:
            merged.append(group[0])
            continue
        first = group[0]
        hosts = tuple(sorted({h for f in group for h in f.hosts}))
        worst = max(group, key=lambda f: LEVEL_ORDER.index(f.confidence.level))
        reasons = sorted({f.confidence.reason for f in group})
        reason = reasons[0] if len(reasons) == 1 else f"{worst.confidence.reason} (weakest of {len(group)} hosts)"
        evidence: list[EvidenceItem] = []
        for f in group:
            evidence.extend(f.evidence[:MAX_EVIDENCE_PER_HOST])
        evidence = list(dict.fromkeys(evidence))
        missing = sorted({(m if len(f.hosts) > 1 else f"{f.hosts[0]}: {m}") for f in group
                          for m in f.missing_evidence})
        commands = list(dict.fromkeys(f.fix.command for f in group if f.fix))
        fix = first.fix
        if fix is not None and len(commands) > 1:
            fix = Fix("\n".join(commands[:5]), shell=fix.shell, notes=fix.notes)
        merged.append(Finding(
            cause=first.cause, title=first.title, substatus=first.substatus, severity=first.severity,
            confidence=Confidence(worst.confidence.level, reason), hosts=hosts, site=first.site,
            scope=first.scope, terminal_401=sum(f.terminal_401 for f in group), evidence=tuple(evidence),
            explanation=first.explanation, fix=fix, missing_evidence=tuple(missing),
            explains=frozenset().union(*(f.explains for f in group))))
    return merged


def attach_drift(findings: Sequence[Finding], items: Sequence[DriftItem]) -> list[Finding]:
    """Cite the drift that lines up exactly with a finding's hosts as evidence of it."""
    out = []
    for f in findings:
        extra = [EvidenceItem("drift", h, d.summary) for d in items if d.site.lower() == f.site.lower()
                 and d.score == 1.0 and set(d.hosts) == set(f.hosts) for h in d.hosts[:1]]
        if extra:
            from dataclasses import replace

            f = replace(f, evidence=f.evidence + tuple(extra[:3]))
        out.append(f)
    return out


def matrix(hosts: Mapping[str, HostEvidence], per_host: Mapping[str, Sequence[Finding]]) -> list[MatrixCell]:
    cells = []
    for name, host in sorted(hosts.items()):
        terminal: dict[str, int] = defaultdict(int)
        for g in terminal_groups(host):
            terminal[g.site] += g.terminal
        sites = set(host.log.requests_by_site) | {s for s, n in terminal.items() if n}
        for site in sorted(sites):
            causes = Counter()
            for f in per_host.get(name, ()):
                if f.site.lower() == site.lower():
                    causes[f.cause] += f.terminal_401
            leading = sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if causes else None
            cells.append(MatrixCell(name, site, int(host.log.requests_by_site.get(site, 0)), terminal.get(site, 0),
                                    leading))
    return cells


# --- the directory ---------------------------------------------------------------------------------

def directory_spn_owners(hosts: Mapping[str, HostEvidence], owners: Mapping[str, frozenset[str]],
                         seen_by: Mapping[str, set[str]], directory: object) \
        -> tuple[dict[str, frozenset[str]], dict[str, set[str]]]:
    """Fleet SPN owners with the directory's answer taking precedence for every SPN it was asked about:
    LDAP lists *every* account holding an SPN, setspn on a web server only the accounts it was given."""
    merged = dict(owners)
    seen = {k: set(v) for k, v in seen_by.items()}
    if directory is None or not getattr(directory, "usable", False):
        return merged, seen
    for key, holders in directory.spn_holders.items():  # type: ignore[attr-defined]
        merged[key] = holders
    for name, host in hosts.items():
        for host_name in host_names(host):
            key = f"http/{host_name}"
            if key in directory.spn_holders:  # type: ignore[attr-defined]
                seen.setdefault(key, set()).add(name)
        if host.config is not None:
            for site in host.config.sites:
                for host_name in host_names(host, site.name):
                    if f"http/{host_name}" in directory.spn_holders:  # type: ignore[attr-defined]
                        seen.setdefault(f"http/{host_name}", set()).add(name)
    return merged, seen


#: cause → what it was judged on when no domain controller answered
_WEAKER = {
    "kerberos-spn-duplicate": "SPN registrations from setspn -L on the web servers (a second hop to a DC that "
                              "can fail, and it lists only the accounts it was asked about)",
    "kerberos-spn-missing": "SPN registrations from setspn -L on the web servers",
    "kerberos-kernel-mode-mismatch": "SPN registrations from setspn -L on the web servers",
    "kerberos-spn-misplaced": "SPN registrations from setspn -L on the web servers (only the accounts asked about)",
    "account-locked-out": "4625 records and local account data, not the account's state in the domain",
    "account-disabled-or-expired": "4625 records and local account data, not the account's state in the domain",
    "logon-right-denied": "local group lists only: membership in nested domain groups was not resolved",
    "content-acl-denied": "local group lists only: membership in nested domain groups was not resolved",
    "unc-share-acl-mismatch": "descriptors read by the web server and local group lists only",
}


def directory_notes(findings: Iterable[Finding], directory: object,
                    hosts: Mapping[str, HostEvidence] | None = None) -> list[str]:
    """What the report must say about the directory: which causes were judged on weaker evidence."""
    notes: list[str] = [f"{name}: IIS configuration read from the shared {host.shared_config_read} on the file "
                        f"server over SMB (shared configuration)"
                        for name, host in sorted((hosts or {}).items()) if host.shared_config_read]
    usable = directory is not None and getattr(directory, "usable", False)
    if usable:
        errors = list(getattr(directory, "errors", ()))
        notes.append(f"Domain facts read over {directory.source()}; SPN holders searched "  # type: ignore[attr-defined]
                     f"{getattr(directory, 'spn_scope', '') or 'in the domain'}.")
        notes += [f"Directory query problem: {e}" for e in errors[:5]]
        return notes
    weaker = sorted({(f.cause, h) for f in findings if f.cause in _WEAKER for h in f.hosts})
    if directory is None:
        head = "No directory: section in the inventory, so domain facts were not read from a domain controller."
    else:
        errors = "; ".join(list(getattr(directory, "errors", ()))[:3])
        head = f"The directory was configured but no domain controller answered ({errors or 'no details'})."
    if weaker:
        notes.append(head)
        by_cause: dict[str, list[str]] = defaultdict(list)
        for cause, host in weaker:
            by_cause[cause].append(host)
        notes += [f"{cause} on {', '.join(hosts_)}: judged on weaker evidence: {_WEAKER[cause]}."
                  for cause, hosts_ in sorted(by_cause.items())]
    return notes
