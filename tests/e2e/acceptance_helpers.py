"""What the acceptance tests compare: the causes the lab planted (its answer key) and those the report found."""

from __future__ import annotations


def planted(expected: dict) -> dict[str, set[tuple[str, str]]]:
    """host → {(cause, site)} from the lab's expected.json."""
    return {host: {(c["cause"], c["site"]) for c in causes} for host, causes in expected["hosts"].items()}


def reported(report: dict) -> dict[str, set[tuple[str, str]]]:
    """host → {(cause, site)} from a report model."""
    found: dict[str, set[tuple[str, str]]] = {}
    for finding in report["findings"]:
        for host in finding["hosts"]:
            found.setdefault(host, set()).add((finding["cause"], finding["site"]))
    return found
