"""`iisfleet run` on a disk that fills up mid-run, against the real lab (issue 13, item 7)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from lab_fixtures import PASSWORD, PLAYBOOK, write_inventory
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.rundir import load_run


def test_a_full_disk_is_a_categorised_error_and_the_collected_hosts_stay_reportable(
        lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    playbook = tmp_path / "fleet-test.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    inventory = write_inventory(lab, tmp_path / "inv.yml", ["good", "good2"])
    real_fsync, real_unlink = os.fsync, os.unlink
    state = {"files": 0, "freed": False}

    def fsync(fd: int) -> None:  # the OS boundary: after the first host's durable files, the disk is full
        state["files"] += 1  # run.json, then per host its envelope and its final host.json are fsynced
        if state["files"] > 3 and not state["freed"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith(".reserve"):
            state["freed"] = True  # the run's reserve file is given back: run.json can be written
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(playbook), "-i", str(inventory), "--out", str(out),
                                      "--concurrency", "1"],
                                env={"IISFLEET_TEST_LAB_PASSWORD": PASSWORD}, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "[storage] cannot write the run directory" in result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "storage-error" and meta["error"]["category"] == "storage"
    run = load_run(out)
    assert run.status == "storage-error"
    assert run.hosts["good"].envelopes["Get-HostFact"]["data"]["iis_version"] == "10.0"
    assert run.hosts["good2"].envelopes == {} and run.hosts["good2"].status != "ok"
