"""The large scenario with its domain controller (marker ``samba``): a 20-host cut of it (its 300 hosts are
for benchmarks) served with the lab DC seeded from its domain: section; the domain-side cause it plants is
read from LDAP, and every planted cause is found on exactly its host."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.lab.addc import available

pytestmark = pytest.mark.samba


def test_large_scenario_runs_against_its_domain_controller(tmp_path: Path) -> None:
    why = available()
    if why:
        pytest.skip(f"Samba AD DC not available here: {why}")
    from toolkit.lab.demo import run_demo

    result = run_demo(tmp_path, scenario="large", hosts=20, domain_controller=True)
    planted = {h: {(c["cause"], c["site"]) for c in causes} for h, causes in result.expected["hosts"].items()}
    found: dict[str, set[tuple[str, str]]] = {}
    for finding in result.report["findings"]:
        if finding["substatus"].startswith("401"):
            for host in finding["hosts"]:
                found.setdefault(host, set()).add((finding["cause"], finding["site"]))
    assert {h: c for h, c in planted.items() if c} == found
    locked = next(f for f in result.report["findings"] if f["cause"] == "account-locked-out")
    assert locked["confidence"]["level"] == "high"
    assert any(e["kind"] == "directory" and e["source"]["file"] == "LDAP 127.0.0.53:636" for e in locked["evidence"])
    assert (result.run_dir / "directory.json").is_file()
