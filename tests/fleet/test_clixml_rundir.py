"""CLIXML stderr decoding (untrusted XML) and the run directory's atomic writes and tolerant reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.models import HostResult, StepError, StepResult
from toolkit.rundir import RunDirWriter, default_run_dir, host_dir_name, load_run, write_json_atomic
from toolkit.transports.clixml import decode_stderr

CLIXML = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj>'
    '<S S="Error">Get-Item : Cannot find path _x0027_C:\\nope_x0027_ because it does not exist._x000D__x000A_</S>'
    '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>'
)


def test_clixml_errors_are_decoded_to_one_readable_line() -> None:
    assert decode_stderr(CLIXML) == ["Get-Item : Cannot find path 'C:\\nope' because it does not exist. At line:1 char:1"]


def test_plain_stderr_is_kept() -> None:
    assert decode_stderr("The command line is too long.\r\n") == ["The command line is too long."]
    assert decode_stderr("") == []


def test_hostile_clixml_is_not_expanded() -> None:
    bomb = ('#< CLIXML\n<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Objs><S S="Error">&lol2;</S></Objs>')
    messages = decode_stderr(bomb)
    assert len(messages) == 1
    assert "lollol" not in messages[0]  # kept as raw text, never expanded
    assert len(messages[0]) <= 2000


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "x.json"
    write_json_atomic(target, {"k": 1})
    write_json_atomic(target, {"k": 2})
    assert json.loads(target.read_text()) == {"k": 2}
    assert os.listdir(target.parent) == ["x.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json_atomic(target, {"k": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"k": object()})
    assert json.loads(target.read_text()) == {"k": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_a_killed_run_reads_as_interrupted(tmp_path: Path) -> None:
    writer = RunDirWriter(tmp_path)
    writer.write_meta({"playbook": "p", "status": "running", "finished_utc": None, "hosts": ["web01", "web02", "web/3"]})
    result = HostResult(host="web01", address="127.0.0.1", transport="winrm", status="ok",
                        steps=[StepResult("Get-HostFact", "ok")])
    writer.write_envelope("web01", "Get-HostFact", {"collector": "Get-HostFact"})
    writer.write_host(result, finished=False)
    writer.log("host_started", host="web01")
    writer.close()
    with open(tmp_path / "log.jsonl", "a") as torn:
        torn.write('{"event": "step_fin')  # killed mid-line
    run = load_run(tmp_path)
    assert run.status == "interrupted"
    assert run.hosts["web01"].status == "partial"  # it had not finished
    assert run.hosts["web01"].envelopes == {"Get-HostFact": {"collector": "Get-HostFact"}}
    assert run.hosts["web02"].status == "skipped"
    assert run.hosts["web/3"].status == "skipped"
    assert [e["event"] for e in run.events] == ["host_started"]


def test_finished_host_keeps_error(tmp_path: Path) -> None:
    writer = RunDirWriter(tmp_path)
    writer.write_meta({"playbook": "p", "status": "complete", "finished_utc": "2026-11-24T22:00:00Z", "hosts": ["w"]})
    writer.write_host(HostResult(host="w", address="a", transport="ssh", status="failed",
                                 error=StepError("auth", "denied", "wrong password")), finished=True)
    run = load_run(tmp_path)
    assert run.status == "complete"
    assert run.hosts["w"].error == {"category": "auth", "message": "denied", "explanation": "wrong password"}


def test_load_run_rejects_non_run_directories(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no run.json"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(InputError, match="run.json:1"):
        load_run(tmp_path)



def _one_host_run(root: Path) -> Path:
    writer = RunDirWriter(root)
    writer.write_meta({"playbook": "p", "status": "complete", "finished_utc": "2026-11-24T22:00:00Z",
                       "hosts": ["web01"]})
    writer.write_host(HostResult(host="web01", address="a", transport="winrm", status="ok",
                                 steps=[StepResult("Get-HostFact", "ok")]), finished=True)
    writer.write_envelope("web01", "Get-HostFact", {"collector": "Get-HostFact"})
    writer.close()
    load_run(root)  # valid as written
    return root / "hosts" / host_dir_name("web01")


@pytest.mark.parametrize(
    ("target", "content", "message"),
    [
        ("run.json", b"\xff\xfe\x00garbage", r"run\.json: not valid JSON: the file is not UTF-8 text"),
        ("host.json", b"[]", r"host\.json: expected a JSON object \(iisfleet\.host/1\), found list"),
        ("host.json", b"\xff\x00", r"host\.json: not valid JSON: the file is not UTF-8 text"),
        ("host.json", b'{"host": 5}', r"host\.json \(host\): expected the host name as a string"),
        ("host.json", b'{"host": null}', r"host\.json \(host\): expected the host name as a string"),
        ("Get-HostFact.json", b"[1, 2]",
         r"Get-HostFact\.json: expected a JSON object \(a collector envelope\)"),
        ("Get-HostFact.json", b"null", r"Get-HostFact\.json: expected a JSON object"),
        ("Get-HostFact.json", b"\xff\x00", r"Get-HostFact\.json: not valid JSON"),
    ],
)
def test_garbage_run_files_are_input_errors_naming_the_file(
    tmp_path: Path, target: str, content: bytes, message: str
) -> None:
    host_dir = _one_host_run(tmp_path)
    (tmp_path / target if target == "run.json" else host_dir / target).write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_run(tmp_path)


@pytest.mark.parametrize("hosts", ["web01", [1, None], {"web01": 1}])
def test_run_json_hosts_must_be_a_list_of_names(tmp_path: Path, hosts: object) -> None:
    _one_host_run(tmp_path)
    meta = json.loads((tmp_path / "run.json").read_text())
    meta["hosts"] = hosts
    (tmp_path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"run\.json \(hosts\): expected a list of host names"):
        load_run(tmp_path)


def test_names_are_safe_and_run_dirs_unique(tmp_path: Path) -> None:
    assert host_dir_name("web01.contoso.com") == "web01.contoso.com"
    # path characters and a leading dot are encoded (reversibly), so no name climbs out of hosts/
    assert host_dir_name("../etc") == "_2e._2fetc"
    assert host_dir_name("..") == "_2e."
    first = default_run_dir("triage-401", tmp_path)
    first.mkdir()
    assert default_run_dir("triage-401", tmp_path) != first
    assert first.name.endswith("-triage-401")
