"""Host selection patterns (``--limit``).

A limit is a comma-separated list of terms, applied left to right:

- ``web01`` a host name, ``web`` a group name (all its hosts, nested groups included); ``all`` every
  host, as in Ansible;
- ``tag:prod`` hosts carrying a tag (the tag may be a glob: ``tag:eu-*``);
- ``web0*``, ``web0[1-3]``, ``*.contoso.com`` globs over host names and group names;
- ``!term`` removes what ``term`` matches; ``&term`` keeps only hosts that ``term`` also matches.

Only exclusions/intersections (no positive term) start from every host. The result keeps inventory
order. A positive term that matches nothing is an error: a typo must not silently shrink a sweep.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from toolkit.errors import UsageError

_GLOB_CHARS = set("*?[")


def _matches(
    term: str, hosts: Sequence[str], groups: Mapping[str, Sequence[str]], tags: Mapping[str, Sequence[str]]
) -> set[str]:
    if term.startswith("tag:"):
        pattern = term[4:]
        if not pattern:
            raise UsageError("--limit: 'tag:' needs a tag name")
        return {
            host for host in hosts if any(fnmatch.fnmatchcase(tag, pattern) for tag in tags.get(host, ()))
        }
    if term.startswith("group:"):
        name = term[6:]
        return set(groups.get(name, ())) if name in groups else set()
    if _GLOB_CHARS & set(term):
        found = {host for host in hosts if fnmatch.fnmatchcase(host, term)}
        for group, members in groups.items():
            if fnmatch.fnmatchcase(group, term):
                found.update(members)
        return found
    found = set()
    if term == "all" and "all" not in hosts:
        return set(hosts)  # Ansible's implicit group of every host
    if term in groups:
        found.update(groups[term])
    if term in hosts:
        found.add(term)
    return found


def select_names(
    limit: str | None,
    hosts: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    tags: Mapping[str, Sequence[str]],
) -> list[str]:
    """Apply a ``--limit`` expression; return matching host names in inventory order.

    Raises:
        UsageError: an empty term, or a positive term that matches no host, group or tag.
    """
    if limit is None or not limit.strip():
        return list(hosts)
    terms = [term.strip() for term in limit.split(",")]
    if any(not term for term in terms):
        raise UsageError(f"--limit {limit!r}: empty term (two commas in a row?)")
    positive = [term for term in terms if not term.startswith(("!", "&"))]
    selected: set[str] = set() if positive else set(hosts)
    for term in terms:
        if term.startswith("!"):
            selected -= _matches(term[1:].strip(), hosts, groups, tags)
        elif term.startswith("&"):
            selected &= _matches(term[1:].strip(), hosts, groups, tags)
        else:
            found = _matches(term, hosts, groups, tags)
            if not found:
                raise UsageError(f"--limit: {term!r} matches no host, group or tag in the inventory")
            selected |= found
    return [host for host in hosts if host in selected]
