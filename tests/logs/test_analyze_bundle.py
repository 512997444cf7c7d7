"""`iisfleet analyze BUNDLE`: a sealed run directory or its exported zip is verified first (toolkit.bundle), its raw
artefacts (hosts/<host>/artefacts/w3c|httperr|evtx) and collectors' log excerpts are read with each host folder
naming the server, the read is a custody `access` entry, and the zip gives the same analysis as the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from toolkit.bundle import export_bundle, seal_run
from toolkit.bundle.custody import CUSTODY_FILE, read_entries
from toolkit.cli import app
from toolkit.logs import samples_dir

runner = CliRunner()


def _application_log(path: Path) -> None:
    """Five records in the EVTX layout (the lab's writer: file header, CRC'd chunk, Binary XML)."""
    from toolkit.lab.model.evtx import write_evtx

    write_evtx(str(path), [{"provider": "Application Error", "id": 1000 + n, "record_id": n + 1,
                            "time": f"2026-11-24T10:0{n}:00.0000000Z", "channel": "Application",
                            "computer": "web01.contoso.com", "data": [("Param1", f"record {n}")]}
                           for n in range(5)])


def _bundle(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "hosts").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"playbook": "incident-collect", "status": "complete"}), "utf-8")
    for host, sites in (("web01", ("W3SVC1",)), ("web02", ("W3SVC1", "W3SVC2"))):
        raw = run / "hosts" / host / "artefacts"
        for site in sites:
            shutil.copytree(samples_dir() / site, raw / "w3c" / site)
        shutil.copytree(samples_dir() / "HTTPERR", raw / "httperr" / "HTTPERR")
        (raw / "evtx").mkdir()
        _application_log(raw / "evtx" / "Application.evtx")
    seal_run(run)
    return run


def _analyze(path: Path, *extra: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["analyze", str(path), "--json", *extra])
    try:
        return result.exit_code, json.loads(result.stdout), result.output
    except ValueError:
        return result.exit_code, None, result.output


def test_the_zip_gives_the_same_analysis_as_the_folder_and_hosts_name_the_servers(tmp_path: Path) -> None:
    run = _bundle(tmp_path)
    code, from_dir, output = _analyze(run)
    assert code == 0, output
    export_bundle(run, tmp_path / "bundle.zip")
    code, from_zip, output = _analyze(tmp_path / "bundle.zip")
    assert code == 0, output
    from_dir.pop("inputs"), from_zip.pop("inputs")
    assert from_zip == from_dir
    assert from_dir["bundle"] == {"verified": True, "hosts": ["web01", "web02"], "problems": []}
    servers = {row["server"] for row in from_dir["sites"]}
    assert servers == {"web01", "web02"}
    assert from_dir["events"]["records"] == 10  # five records in each host's .evtx
    assert str(tmp_path) not in json.dumps(from_dir)  # paths are relative to the bundle


def test_analyze_is_an_access_in_the_custody_log(tmp_path: Path) -> None:
    run = _bundle(tmp_path)
    assert _analyze(run)[0] == 0
    entries = read_entries((run / CUSTODY_FILE).read_text("utf-8"))
    assert [e["action"] for e in entries] == ["collection", "access"]
    assert entries[-1]["details"]["command"] == "analyze"
    assert runner.invoke(app, ["bundle", "verify", str(run)]).exit_code == 0  # the access entry keeps the chain


def test_a_bundle_that_does_not_verify_is_refused_unless_accepted(tmp_path: Path) -> None:
    run = _bundle(tmp_path)
    # a log slipped into the bundle after it was sealed: not what was collected
    log = run / "hosts" / "web01" / "artefacts" / "w3c" / "W3SVC1" / "u_ex261125.log"
    log.write_text("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
                   "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                   "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken\n"
                   "2026-11-25 10:00:00 10.0.0.1 GET / - 443 - 10.0.0.9 curl 401 2 5 1\n", "utf-8")
    code, document, output = _analyze(run)
    assert code == 2 and document is None
    assert "does not verify" in output and log.name in output
    code, document, output = _analyze(run, "--accept-unverified")
    assert code == 0 and document["bundle"]["verified"] is False
    assert any(log.name in p for p in document["bundle"]["problems"])
    assert "analysed anyway" in output
