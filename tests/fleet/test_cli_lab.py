"""`iisfleet run` and `iisfleet hosts check` end to end against the lab, plus the no-secret-anywhere proof."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_fixtures import PASSWORD, PLAYBOOK, EchoBackend, USER, write_inventory
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.lab.backend import LabHostSpec
from toolkit.rundir import load_run

REPO = Path(__file__).resolve().parents[2]
ENV = {"IISFLEET_TEST_LAB_PASSWORD": PASSWORD}


@pytest.fixture
def playbook(tmp_path: Path) -> Path:
    path = tmp_path / "fleet-test.yml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return path


def _invoke(args: list[str]):
    runner = CliRunner()
    return runner.invoke(app, args, env=ENV, catch_exceptions=False)


def test_run_writes_a_run_directory_and_exits_3_for_unreachable_hosts(lab, tmp_path, playbook) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "good2", "refused", "authfail"])
    out = tmp_path / "run"
    result = _invoke(["run", str(playbook), "-i", str(inventory), "--out", str(out), "--json"])
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"ok": 2, "partial": 0, "failed": 2, "skipped": 0}
    assert {h["host"]: h["status"] for h in summary["hosts"]}["refused"] == "failed"
    run = load_run(out)
    assert run.meta["playbook"] == "fleet-test" and run.meta["simulated"] is True
    assert run.hosts["good"].envelopes["Get-HostFact"]["data"]["iis_version"] == "10.0"
    assert run.hosts["authfail"].error["category"] == "auth"


def test_run_limit_and_exit_0_when_all_reached(lab, tmp_path, playbook) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "good2", "refused"])
    result = _invoke(["run", str(playbook), "-i", str(inventory), "--out", str(tmp_path / "r"), "--limit", "good*"])
    assert result.exit_code == 0, result.output
    assert "good2" in result.stdout and "refused" not in result.stdout
    assert set(load_run(tmp_path / "r").hosts) == {"good", "good2"}


def test_run_reports_bad_params_as_usage_error(lab, tmp_path, playbook) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good"])
    result = _invoke(["run", str(playbook), "-i", str(inventory), "--param", "novalue"])
    assert result.exit_code == 2
    assert not (tmp_path / "runs").exists()


def test_hosts_check_table_json_and_exit_code(lab, tmp_path) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "unknownca", "refused", "authfail"])
    result = _invoke(["hosts", "check", "-i", str(inventory), "--json"])
    assert result.exit_code == 1, result.output
    checks = {r["host"]: {c["name"]: c["status"] for c in r["checks"]} for r in json.loads(result.stdout)}
    # the echo lab's hosts do not model the session probe (warn) and offer no JEA endpoint (skip)
    assert checks["good"] == {"dns": "ok", "reverse_dns": checks["good"]["reverse_dns"], "tcp": "ok", "tls": "ok",
                              "auth": "ok", "command": "ok", "clock": "ok", "envelope": "ok", "session": "warn",
                              "rights": "skip", "jea": "skip"}
    assert checks["unknownca"]["tls"] == "fail" and checks["unknownca"]["auth"] == "skip"
    assert checks["refused"]["tcp"] == "fail"
    assert checks["authfail"]["auth"] == "fail" and checks["authfail"]["tls"] == "ok"

    only_good = _invoke(["hosts", "check", "-i", str(inventory), "--limit", "good"])
    assert only_good.exit_code == 0, only_good.output
    assert "1/1 hosts passed" in only_good.stdout
    assert "MaxEnvelopeSizekb" in only_good.stdout


def test_no_secret_in_run_directory_logs_or_verbose_output(lab, tmp_path, playbook) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "authfail", "leaky", "garbage"])
    out = tmp_path / "run"
    refused = _invoke(["run", str(playbook), "-i", str(inventory), "--out", str(out), "--verbose",
                       "--param", f"ignored={PASSWORD}"])
    # an unknown playbook parameter is refused; then the real run
    assert refused.exit_code == 2 and PASSWORD not in refused.output
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", str(playbook), "-i", str(inventory), "--out", str(out), "--verbose"],
        cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "DEBUG" in result.stderr  # verbose really logged
    hosts_check = _invoke(["hosts", "check", "-i", str(inventory), "--verbose", "--json"])
    assert "DEBUG" in hosts_check.output
    texts = [result.stdout, result.stderr, hosts_check.output]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()]
    assert len(texts) > 7
    for text in texts:
        assert PASSWORD not in text
    assert load_run(out).hosts["leaky"].error["category"] == "contract"


@pytest.mark.slow
def test_sigint_mid_run_leaves_a_readable_run_directory(tmp_path, playbook) -> None:
    from toolkit.lab.server import LabServer

    names = [f"sig{i:02}" for i in range(8)]
    specs = [(LabHostSpec(name=n, address=f"127.0.61.{10 + i}", http_port=0, https_port=0, ssh_port=0,
                          users={USER: PASSWORD}), EchoBackend(fact_delay_s=0.6)) for i, n in enumerate(names)]
    with LabServer(specs, state_dir=tmp_path / "lab", ssh=False) as lab:
        inventory = write_inventory(lab, tmp_path / "inv.yml", names)
        out = tmp_path / "run"
        process = subprocess.Popen(
            [sys.executable, "-m", "toolkit", "run", str(playbook), "-i", str(inventory), "--out", str(out),
             "--concurrency", "1"], cwd=REPO, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [p for p in out.glob("hosts/*/Get-HostFact.json")]
            if len(done) >= 2:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupt" in stderr
    run = load_run(out)
    assert run.status == "interrupted"
    statuses = [run.hosts[n].status for n in names]
    assert statuses.count("ok") >= 2
    assert statuses[-1] == "skipped"
    assert set(statuses) <= {"ok", "skipped"}
    for name in names:
        if run.hosts[name].status == "ok":
            assert run.hosts[name].envelopes["Get-HostFact"]["collector"] == "Get-HostFact"


def test_hosts_check_over_ssh_reports_host_key_trust(lab, tmp_path) -> None:
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "authfail"], transport="ssh")
    result = _invoke(["hosts", "check", "-i", str(inventory), "--json"])
    checks = {r["host"]: {c["name"]: c for c in r["checks"]} for r in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert checks["good"]["auth"]["status"] == "ok" and checks["good"]["envelope"]["status"] == "skip"
    assert checks["good"]["clock"]["status"] == "ok"
    assert checks["authfail"]["auth"]["category"] == "auth"

    text = inventory.read_text().replace(str(lab.known_hosts_path), str(tmp_path / "empty_known_hosts"))
    (tmp_path / "empty_known_hosts").write_text("")
    inventory.write_text(text)
    result = _invoke(["hosts", "check", "-i", str(inventory), "--limit", "good", "--json"])
    good = {c["name"]: c for c in json.loads(result.stdout)[0]["checks"]}
    assert result.exit_code == 1
    assert good["tls"]["status"] == "fail" and "known_hosts" in good["tls"]["explanation"]
    assert good["auth"]["status"] == "skip"


def test_ca_bundle_option_overrides_the_inventory(lab, tmp_path, playbook) -> None:
    import certifi

    # the inventory trusts only the public CAs: the lab's certificates are refused as tls
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good"])
    inventory.write_text(inventory.read_text().replace(str(lab.ca_cert_path), certifi.where()))
    untrusted = _invoke(["run", str(playbook), "-i", str(inventory), "--out", str(tmp_path / "a"), "--json"])
    assert untrusted.exit_code == 3
    assert json.loads(untrusted.stdout)["hosts"][0]["error"]["category"] == "tls"
    trusted = _invoke(["run", str(playbook), "-i", str(inventory), "--out", str(tmp_path / "b"), "--json",
                       "--ca-bundle", str(lab.ca_cert_path)])
    assert trusted.exit_code == 0, trusted.output
