"""Evidence bundles over a real lab collection: incident-collect over real WinRM against six simulated
servers, sealed by the run, then verified, tampered with, exported and reported on through the CLI."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.bundle.custody import entry_hash
from toolkit.bundle.manifest import file_digest
from toolkit.cli import app


@pytest.fixture(scope="module")
def sealed_run(tmp_path_factory) -> Path:
    from toolkit.lab.demo import run_demo

    work = tmp_path_factory.mktemp("bundle")
    return run_demo(work, scenario="seed-catalog", hosts=6, playbook_name="incident-collect").run_dir


@pytest.fixture
def run_copy(sealed_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sealed_run, tmp_path / "run"))


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def verify_json(path: Path) -> tuple[int, dict]:
    result = cli("bundle", "verify", str(path), "--json")
    return result.exit_code, json.loads(result.stdout)


def custody(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "custody.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_run_seals_itself_with_manifests_that_match_what_was_collected(run_copy: Path) -> None:
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    run_meta = json.loads((run_copy / "run.json").read_text(encoding="utf-8"))
    assert manifest["playbook"] == "incident-collect" and manifest["parameters"] == run_meta["parameters"]
    assert manifest["operator"] and manifest["controller"] and manifest["iisfleet_version"]
    listed = {item["path"]: item for item in manifest["files"]}
    on_disk = {p.relative_to(run_copy).as_posix() for p in run_copy.rglob("*") if p.is_file()}
    assert set(listed) == {p for p in on_disk if p.split("/")[0] not in ("report", "manifest.json", "custody.jsonl")}
    for path, item in listed.items():
        assert (item["sha256"], item["size"]) == file_digest(run_copy / path), path
    for host in manifest["hosts"]:
        host_manifest = json.loads((run_copy / host["manifest"]).read_text(encoding="utf-8"))
        fact = json.loads((run_copy / "hosts" / host["host"] / "Get-HostFact.json").read_text())["data"]
        assert host_manifest["identity"]["computer_name"] == fact["computer_name"]
        assert host_manifest["identity"]["os_build"] == fact["os_build"] and host_manifest["identity"]["ip"]
        assert host_manifest["started_utc"] <= host_manifest["finished_utc"]
        config = [a for a in host_manifest["artefacts"] if a["field"] == "data.application_host_config.content"]
        assert config and config[0]["host_path"].endswith("applicationHost.config") and len(config[0]["sha256"]) == 64
    [entry] = custody(run_copy)
    assert entry["action"] == "collection" and entry["prev_sha256"] == "0" * 64
    assert entry["details"]["manifest_sha256"] == file_digest(run_copy / "manifest.json")[0]

    code, result = verify_json(run_copy)
    assert code == 0 and result["ok"] and result["files_checked"] == len(listed) and result["artefacts_checked"] > 0
    entries = custody(run_copy)
    assert [e["action"] for e in entries] == ["collection", "verification"]
    assert entries[1]["prev_sha256"] == entries[0]["sha256"] == entry_hash(entries[0])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_custody_entry(run_dir: Path) -> None:
    lines = (run_dir / "custody.jsonl").read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[0])
    entry["operator"] = "someone-else"  # hash left as it was
    lines[0] = json.dumps(entry, sort_keys=True)
    (run_dir / "custody.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


TAMPERING = {
    "flipped byte in an envelope": (lambda r: _flip_byte(r / "hosts/web02/Get-IisW3CLog.json"),
                                    "modified", "hosts/web02/Get-IisW3CLog.json"),
    "flipped byte in the event log": (lambda r: _flip_byte(r / "log.jsonl"), "modified", "log.jsonl"),
    "removed file": (lambda r: (r / "hosts/web03/Get-IisConfig.json").unlink(), "missing",
                     "hosts/web03/Get-IisConfig.json"),
    "added file": (lambda r: (r / "hosts/web01/planted.json").write_text("{}"), "extra", "hosts/web01/planted.json"),
    "edited custody entry": (_edit_custody_entry, "custody-edited", "custody.jsonl entry 1"),
    "edited manifest": (lambda r: _flip_byte(r / "manifest.json"), "manifest", "manifest.json"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_fails_and_names_each_kind_of_tampering(run_copy: Path, case: str) -> None:
    tamper, kind, path = TAMPERING[case]
    tamper(run_copy)
    code, result = verify_json(run_copy)
    assert code == 1 and not result["ok"]
    assert {"kind": kind, "path": path} in [{"kind": p["kind"], "path": p["path"]} for p in result["problems"]], result
    text = cli("bundle", "verify", str(run_copy))
    assert text.exit_code == 1 and f"FAIL {kind}: {path}" in text.stdout


def test_a_removed_custody_entry_breaks_the_chain_where_it_was(run_copy: Path) -> None:
    for _ in range(3):
        assert cli("bundle", "verify", str(run_copy)).exit_code == 0
    lines = (run_copy / "custody.jsonl").read_text(encoding="utf-8").splitlines()
    del lines[1]
    (run_copy / "custody.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, result = verify_json(run_copy)
    assert code == 1
    assert {(p["kind"], p["path"]) for p in result["problems"]} == {("custody-chain", "custody.jsonl entry 2")}


def test_export_is_reproducible_and_the_zip_verifies_and_reports_like_the_directory(
        sealed_run: Path, tmp_path: Path) -> None:
    first = Path(shutil.copytree(sealed_run, tmp_path / "a"))
    second = Path(shutil.copytree(sealed_run, tmp_path / "b", copy_function=shutil.copy))  # new mtimes
    for path in second.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o600)
    zip_a, zip_b = tmp_path / "out" / "a.zip", tmp_path / "b.zip"
    assert cli("bundle", "export", str(first), str(zip_a)).exit_code == 0
    assert cli("bundle", "export", str(second), str(zip_b)).exit_code == 0
    assert zip_a.read_bytes() == zip_b.read_bytes()
    assert (tmp_path / "out" / "a.zip.sha256").read_text() == f"{file_digest(zip_a)[0]}  a.zip\n"

    with zipfile.ZipFile(zip_a) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and "manifest.json" in names and "custody.jsonl" in names
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)} and {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not any(n.startswith("report/") for n in names)
    assert custody(first)[-1]["action"] == "export" and custody(first)[-1]["details"]["zip_sha256"] == file_digest(zip_a)[0]

    code, result = verify_json(zip_a)
    assert code == 0 and result["ok"], result
    for fmt in ("json", "text", "md"):
        from_dir = cli("report", str(first), "-f", fmt)
        from_zip = cli("report", str(zip_a), "-f", fmt)
        assert from_zip.stdout == from_dir.stdout and from_zip.exit_code == from_dir.exit_code, fmt
    assert json.loads(cli("report", str(zip_a), "-f", "json").stdout)["findings"]
    assert custody(first)[-1] == {**custody(first)[-1], "action": "access", "details": {"command": "report"}}
    assert verify_json(first)[0] == 0  # the access entries extend the chain

    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(zip_a) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data.replace(b'"WEB04"', b'"WEB4X"') if info.filename.endswith("Get-HostFact.json") else data)
    code, result = verify_json(damaged)
    assert code == 1 and ("modified", "hosts/web04/Get-HostFact.json") in {(p["kind"], p["path"]) for p in result["problems"]}


def test_export_refuses_a_damaged_run_and_verify_refuses_what_is_no_bundle(run_copy: Path, tmp_path: Path) -> None:
    _flip_byte(run_copy / "run.json")
    refused = cli("bundle", "export", str(run_copy), str(tmp_path / "x.zip"))
    assert refused.exit_code == 2 and not (tmp_path / "x.zip").exists()
    (tmp_path / "plain").mkdir()
    assert cli("bundle", "verify", str(tmp_path / "plain")).exit_code == 2
    assert cli("bundle", "verify", str(tmp_path / "missing")).exit_code == 2
