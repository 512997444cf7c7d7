"""Raw artefacts over the lab: Get-IisRawArtefact answered by the real target-side core under Mono, sent in
64 KiB chunks over real WinRM, received by the controller into hosts/<host>/artefacts/.

* One host's transfer is interrupted three times, each by a lab transfer fault or the operator: the
  connection is cut mid-file (the runner resumes the step on a new session with Have), then the host stalls
  until the step's timeout, then the host stalls and the operator presses Ctrl-C twice; `iisfleet run
  --resume` follows each. The files end byte-identical to an uninterrupted collection, with the same hashes
  in the host manifest and the receiver's index, and the last attempt sends only what was missing.
* Another host's transfer has one byte flipped in one chunk on the way: that file is refused and named (an
  integrity error, the host manifest, the custody log); every other file is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from toolkit.collectors import load_catalog
import yaml

from toolkit.lab.model import load_fleet, write_inventory
from toolkit.lab.scenarios import generate
from toolkit.lab.server import LabServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif("Get-IisRawArtefact" not in load_catalog(),
                                reason="the Get-IisRawArtefact collector (host side of issue 16) is not bundled yet")
PLAYBOOK = Path(__file__).resolve().parents[1] / "fixtures" / "artefacts" / "raw-artefacts.yml"
INTERRUPTED, DAMAGED = "web01", "web02"
BIG_LOG = "files/C/inetpub/logs/LogFiles/W3SVC1/u_ex261124.log"


def iisfleet(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={k: v for k, v in os.environ.items() if k != "COLUMNS"})


#: The chunk size the transfers use, and how many chunks the biggest file must take so that each cut lands
#: inside it (a third of them in, then a fifth further on each later attempt).
CHUNK_BYTES, MIN_CHUNKS = 65536, 30
_STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _grow_the_log(host_dir: Path) -> None:
    """A W3C log of about 3 MB, so a cut can land inside a file of many chunks: its data lines repeated, each
    copy stamped with the date and time of the log's last line.

    The lab re-files a host's traffic into daily files at the midnight of the clock it is loaded at, so
    copies that kept their own times would be split over one or two files by the second the test runs (at
    06:16:32 UTC the bigger one took 24 chunks, and at 07:09:29 the last attempt had more than half the bytes
    left to send). Stamped with one time, every copy goes to the same file at any second."""
    path = host_dir / BIG_LOG
    lines = path.read_bytes().splitlines(keepends=True)
    header = [line for line in lines if line.startswith(b"#")]
    data = [line for line in lines if not line.startswith(b"#")]
    assert header[-1].startswith(b"#Fields: date time ") and all(_STAMP.match(line) for line in data)
    last = _STAMP.match(data[-1]).group(0)
    copy = b"".join(last + line[len(last):] for line in data)
    wanted = (MIN_CHUNKS + 16) * CHUNK_BYTES
    path.write_bytes(b"".join(lines) + copy * max(1, -(-wanted // len(copy))))


def _plan_cuts(fleet_dir: Path) -> tuple[int, int]:
    """Where to cut: a third into the biggest file's chunks on the first attempt, then a fifth further on
    each later one (which opens with one header part per file already collected)."""
    from toolkit.collectors import load_catalog

    probe = load_fleet(fleet_dir, port_base=0).backend(INTERRUPTED)
    since = (datetime.now(timezone.utc) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = probe.answer(load_catalog()["Get-IisRawArtefact"].script, {"Since": since, "ChunkBytes": CHUNK_BYTES})
    parts = [json.loads(text)["data"] for text in answer.output]
    sizes = {h["file_id"]: h["size"] for p in parts for h in p.get("artefacts", [])}
    biggest = max(sizes, key=sizes.get)
    chunk_parts = [i for i, p in enumerate(parts) if any(c["file_id"] == biggest for c in p.get("chunks", []))]
    assert len(chunk_parts) >= MIN_CHUNKS, f"the grown log's biggest daily file takes {len(chunk_parts)} chunks"
    files_before = sum(1 for p in parts[:chunk_parts[0]] for _ in p.get("artefacts", []))
    return chunk_parts[0] + len(chunk_parts) // 3, files_before + 1 + len(chunk_parts) // 5


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("transfer")
    fleet_dir = work / "fleet"
    generate("healthy", 2, fleet_dir, seed=0)
    _grow_the_log(fleet_dir / "hosts" / INTERRUPTED)
    first_cut, later_cut = _plan_cuts(fleet_dir)
    for host, faults in ((INTERRUPTED, [("drop", first_cut), ("stall", later_cut), ("stall", later_cut)]),
                         (DAMAGED, [("corrupt", 4)])):
        host_yml = fleet_dir / "hosts" / host / "host.yml"
        document = yaml.safe_load(host_yml.read_text())
        document["faults"] = dict(document.get("faults") or {}, transfer=[
            {"collector": "Get-IisRawArtefact", "mode": mode, "after_parts": parts} for mode, parts in faults])
        host_yml.write_text(yaml.safe_dump(document))
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory)
        yield work, inventory


def _artefacts(run_dir: Path, host: str) -> dict[str, str]:
    """Every received file and its SHA-256 (index.json, the receiver's record, is compared apart)."""
    root = run_dir / "hosts" / host / "artefacts"
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "index.json"}


def _index(run_dir: Path, host: str) -> list[dict]:
    """The receiver's records without the host's ``note``: an event log export's note quotes its query, whose
    end is the host's clock when the export ran (the bytes are the same when the events are)."""
    files = json.loads((run_dir / "hosts" / host / "artefacts" / "index.json").read_text())["files"]
    return [{key: value for key, value in record.items() if key != "note"} for record in files]


def _host_manifest(run_dir: Path, host: str) -> dict:
    return json.loads((run_dir / "manifests" / f"{host}.json").read_text(encoding="utf-8"))


def _wait_for(condition, what: str, process: subprocess.Popen, limit: float = 240) -> None:
    give_up = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, f"{what}: the run ended first: {process.communicate()}"
        assert time.monotonic() < give_up, f"{what}: not within {limit} s"
        time.sleep(0.3)


@pytest.mark.slow
def test_three_interruptions_resume_to_the_same_bytes_and_a_flipped_byte_is_refused(lab) -> None:
    work, inventory = lab
    run_dir = work / "interrupted"

    # 1. the connection is cut mid-file (resumed inside the step), then the host stalls until the step's timeout
    first = iisfleet("run", str(PLAYBOOK), "-i", str(inventory), "--out", str(run_dir))
    assert first.returncode in (0, 3), first.stderr  # one step of a host timed out: the host is partial
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [e["host"] for e in events if e["event"] == "transfer_resumed"] == [INTERRUPTED]
    step = json.loads((run_dir / "hosts" / INTERRUPTED / "host.json").read_text())["steps"][-1]
    assert step["status"] == "failed" and step["error"]["category"] == "timeout"
    assert list((run_dir / "hosts" / INTERRUPTED / "artefacts").rglob("*.partial.json"))

    # the flipped byte: refused and named, everything else of that host kept
    damaged = _host_manifest(run_dir, DAMAGED)
    refused = [a for a in damaged["raw_artefacts"] if a["status"] == "refused"]
    assert len(refused) == 1 and "damaged" in refused[0]["reason"]
    assert [r["host_path"] for r in damaged["refused"]] == [refused[0]["host_path"]]
    assert all(a["sha256"] == a["controller_sha256"] for a in damaged["raw_artefacts"] if a["status"] != "refused")
    assert len(damaged["raw_artefacts"]) > 5
    envelope = json.loads((run_dir / "hosts" / DAMAGED / "Get-IisRawArtefact.json").read_text())
    assert [e["target"] for e in envelope["errors"] if e["probe"] == "integrity"] == [refused[0]["host_path"]]
    assert "content" not in json.dumps(envelope["data"]["chunks"])  # headers and summary only
    collection = json.loads((run_dir / "custody.jsonl").read_text().splitlines()[0])
    assert [r["host_path"] for r in collection["details"]["refused"]] == [refused[0]["host_path"]]

    # 2. resumed; the host stalls again and the operator presses Ctrl-C twice
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "run", "--resume", str(run_dir)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = len((run_dir / "log.jsonl").read_text().splitlines())
    _wait_for(lambda: '"step_kept"' in "".join((run_dir / "log.jsonl").read_text().splitlines()[before:]),
              "the resumed run starting on the host", process)
    time.sleep(6.0)  # the stalled transfer
    for _ in range(2):
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"

    # 3. resumed again: the transfer completes, sending only what was missing
    last = iisfleet("run", "--resume", str(run_dir), "--json")
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["status"] == "complete"
    assert not list(run_dir.rglob("*.partial*"))
    evidence = json.loads((run_dir / "hosts" / INTERRUPTED / "Get-IisRawArtefact.json").read_text())
    statuses = [h["status"] for h in evidence["data"]["artefacts"]]
    resumed_at = [h["start_offset"] for h in evidence["data"]["artefacts"] if h["status"] == "send"]
    assert "already-collected" in statuses and any(offset > 0 for offset in resumed_at), evidence["data"]["artefacts"]
    total = sum(h["size"] for h in evidence["data"]["artefacts"])
    assert evidence["data"]["summary"]["bytes_sent"] < total / 2

    # an uninterrupted collection of the same window, on the same lab
    reference = json.loads((run_dir / "run.json").read_text())["reference_utc"]
    whole_dir = work / "uninterrupted"
    whole = iisfleet("run", str(PLAYBOOK), "-i", str(inventory), "--out", str(whole_dir), "--reference-time", reference)
    assert whole.returncode == 0, whole.stderr
    assert _artefacts(run_dir, INTERRUPTED) == _artefacts(whole_dir, INTERRUPTED)
    assert len(_artefacts(run_dir, INTERRUPTED)) > 5
    assert _index(run_dir, INTERRUPTED) == _index(whole_dir, INTERRUPTED)
    resumed_manifest, whole_manifest = _host_manifest(run_dir, INTERRUPTED), _host_manifest(whole_dir, INTERRUPTED)
    assert resumed_manifest["raw_artefacts"] == whole_manifest["raw_artefacts"]
    assert all(a["status"] == "complete" and a["sha256"] == a["controller_sha256"]
               for a in resumed_manifest["raw_artefacts"])

    verify = iisfleet("bundle", "verify", str(run_dir), "--json")
    assert verify.returncode == 0, verify.stdout
    actions = [json.loads(line)["action"] for line in (run_dir / "custody.jsonl").read_text().splitlines()]
    assert actions[:3] == ["collection", "resumption", "resumption"]


@pytest.mark.slow
def test_over_ssh_the_lines_stream_to_disk_and_a_cut_resumes_on_a_new_connection(tmp_path: Path) -> None:
    """The same transfer over the lab's SSH server (one line per part): the connection is cut with a RST
    after a few parts, the runner reconnects and resumes with Have, and every file arrives whole."""
    fleet_dir = tmp_path / "fleet"
    generate("healthy", 1, fleet_dir, seed=1)
    host_yml = fleet_dir / "hosts" / "web01" / "host.yml"
    document = yaml.safe_load(host_yml.read_text())
    document["faults"] = dict(document.get("faults") or {}, transfer=[
        {"collector": "Get-IisRawArtefact", "mode": "drop", "after_parts": 6}])
    host_yml.write_text(yaml.safe_dump(document))
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=True) as server:
        inventory = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory)
        inventory.write_text(inventory.read_text().replace("transport: winrm", "transport: ssh", 1))
        run_dir = tmp_path / "run"
        result = iisfleet("run", str(PLAYBOOK), "-i", str(inventory), "--out", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hosts"][0]["transport"] == "ssh"
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["event"] == "transfer_resumed"] == ["transfer_resumed"]
    raw = _host_manifest(run_dir, "web01")["raw_artefacts"]
    assert len(raw) > 5 and all(a["status"] == "complete" and a["sha256"] == a["controller_sha256"] for a in raw)
    for artefact in raw:
        assert hashlib.sha256((run_dir / artefact["path"]).read_bytes()).hexdigest() == artefact["sha256"]
    assert iisfleet("bundle", "verify", str(run_dir)).returncode == 0
