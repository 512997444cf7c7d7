"""Host environment findings: what the session on a host could not do, and what that cost the diagnosis.

A PowerShell older than the target side supports, a ConstrainedLanguage session, a NoLanguage (JEA)
endpoint without iisfleet's functions, a filtered administrator token, a Security log the account may not
read: each is a finding about the host (``substatus`` ``host``, like the health findings), with the
severity and the cost (collectors lost, causes that cannot be judged) from the one table
``toolkit.jea.rights`` that ``hosts check`` reports from too, so both say the same about a host.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from toolkit.diagnose.evidence import HostEvidence
from toolkit.diagnose.health import HEALTH_SUBSTATUS
from toolkit.diagnose.model import Confidence, EvidenceItem, Finding, Fix
from toolkit.jea.rights import RIGHTS, cost, rights_lacking

#: rights that stop every collector: with one of them, the lesser ones are not worth a finding of their own
_BLOCKING = ("powershell-version", "full-language", "no-language", "core")


def host_rights_lacking(host: HostEvidence) -> dict[str, str]:
    """Right id → what showed it was lacking on ``host``: the collectors' environment refusals, the
    PowerShell version Get-HostFact reported, and a Security log the collector was refused."""
    found = dict(host.environment)
    version = (host.facts or {}).get("ps_version")
    for right in rights_lacking(ps_version=version):
        found.setdefault(right, f"Get-HostFact: PowerShell {' '.join(str(version).split())[:20]}")
    reason = host.missing.get("security-log", "")
    if reason and any(word in reason.lower() for word in ("access-denied", "denied", "no-security-log")):
        found.setdefault("security-log", reason[:300])
    if any(r in found for r in _BLOCKING):
        found = {r: why for r, why in found.items() if r in _BLOCKING or not RIGHTS[r].collectors}
    return found


def environment_findings(hosts: Mapping[str, HostEvidence]) -> list[Finding]:
    """One finding per lacking right, listing every host that lacks it (evidence kept per host)."""
    by_right: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name in sorted(hosts):
        for right, why in sorted(host_rights_lacking(hosts[name]).items()):
            by_right[right].append((name, why))
    out = []
    for right_id, seen in sorted(by_right.items()):
        right = RIGHTS[right_id]
        names = tuple(name for name, _ in seen)
        blocked = ("no cause can be judged on " + ("these hosts" if len(names) > 1 else "this host")
                   if right.causes == ("*",) else
                   "these causes cannot be judged: " + ", ".join(right.causes) if right.causes else "")
        out.append(Finding(
            cause=right.finding, title=f"{right.needs[0].upper()}{right.needs[1:]} is missing"
            if right.collectors else f"{right.needs[0].upper()}{right.needs[1:]}: not available",
            substatus=HEALTH_SUBSTATUS, severity=right.severity,  # type: ignore[arg-type]
            confidence=Confidence("high", "the host's own answers say so"), hosts=names, site="", scope="",
            terminal_401=0,
            evidence=tuple(EvidenceItem("host", name, why) for name, why in seen),
            explanation=f"The session iisfleet opened {cost(right_id)}."
                        + (f" So {blocked}; a report without findings for " + ("these hosts" if len(names) > 1
                                                                               else "this host")
                           + " does not mean nothing is wrong there." if blocked else ""),
            fix=Fix(right.check, notes=f"Shows the state; to fix it: {right.fix}. iisfleet never runs this.")))
    return out
