"""The lab DC's seed from a lab fleet's domain: section (toolkit.lab.addc.seed_from_fleet); no DC needed."""

from __future__ import annotations

from toolkit.lab.addc import seed_from_fleet
from toolkit.lab.model.fleet import load_fleet_model
from toolkit.lab.scenarios import generate


def test_seed_keeps_states_spns_and_duplicates(tmp_path) -> None:
    generate("seed-catalog", 8, tmp_path / "fleet", seed=7)
    model = load_fleet_model(tmp_path / "fleet")
    spec = seed_from_fleet(model)
    users = {u["sam"].lower(): u for u in spec["users"]}
    for account in model.domain.accounts.values():
        if account.kind == "user":
            seeded = users[account.sam.lower()]
            assert (seeded["disabled"], seeded["locked"], seeded["expired"]) == \
                (not account.enabled, account.locked, account.expired)
    every_spn = [s.lower() for a in model.domain.accounts.values() for s in a.spns]
    duplicated = {s for s in every_spn if every_spn.count(s) > 1}
    assert {d["spn"].lower() for d in spec["duplicate_spns"]} == duplicated
    # each SPN is given normally once; the extra holders go through duplicate_spns only
    given = [s.lower() for e in spec["users"] + spec["computers"] for s in e["spns"]]
    assert len(given) == len(set(given))
    computers = {c["sam"].upper() for c in spec["computers"]}
    for host in model.hosts:
        if host.domain_joined:
            assert host.computer_name.upper() + "$" in computers
    # Kerberos keytabs only for SPNs with exactly one holder (a duplicated SPN has no usable key)
    assert all(k["principal"].lower() not in duplicated for k in spec["keytabs"])
