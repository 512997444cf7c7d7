"""Get-IisContentAcl's C# core (IisFleet.Target.ContentAclCollector) under Mono, with the lab's stand-in for
the Windows ACL readers: access denied is reported as denied (never as not-found, which is what Test-Path's
false used to become), missing paths as not-found, UNC shares read once, the envelope valid."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from toolkit.collectors import get_collector
from toolkit.contract import validate_envelope
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.lab.model.corehost import CoreHost, SimulatedHost

CONFIG = "C/Windows/System32/inetsrv/config"
SDDL_SITE = "O:BAG:SYD:(A;OICI;0x1200a9;;;IU)"
SDDL_SHARE = "O:BAG:SYD:(A;;0x1200a9;;;WD)"


def _fleet(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / CONFIG).mkdir(parents=True)
    sites = [("Shop", "C:\\inetpub\\shop"), ("Missing", "C:\\inetpub\\gone"), ("Locked", "C:\\inetpub\\locked"),
             ("Farm", "\\\\fs01\\content\\farm"), ("Farm2", "\\\\fs01\\content\\farm2")]
    body = "".join(f'<site name="{name}" id="{i}"><application path="/"><virtualDirectory path="/" '
                   f'physicalPath="{path}" /></application></site>' for i, (name, path) in enumerate(sites, 1))
    (root / CONFIG / "applicationHost.config").write_text(
        f"<configuration><system.applicationHost><sites>{body}</sites></system.applicationHost></configuration>")
    (root / "C" / "inetpub" / "shop").mkdir(parents=True)
    (root / "C" / "inetpub" / "locked").mkdir(parents=True)
    (root / "UNC" / "fs01" / "content" / "farm").mkdir(parents=True)
    (root / "UNC" / "fs01" / "content" / "farm2").mkdir(parents=True)
    return root


def _run(core_host: CoreHost, root: Path, collector: str, parameters: dict) -> dict:
    host = SimulatedHost("WEB01", "2026-11-24T21:00:00Z", mounts=PresentedFiles(root, timedelta(0)).mounts(), variables=dict(HOST_VARIABLES))
    answer = core_host.run(collector, host, parameters)
    assert answer.error is None, answer.error
    [text] = answer.outputs
    return validate_envelope(text, collector=get_collector("Get-IisContentAcl"), host="web01")


def _lab_parameters(**extra: object) -> dict:
    return {"MaxPaths": 200, "__Acls": [f"c:\\inetpub\\shop\t{SDDL_SITE}"],
            "__Shares": [f"\\\\fs01\\content\t{SDDL_SHARE}"], "__DefaultSddl": "O:BAG:SYD:(A;;FA;;;BA)", **extra}


def test_paths_descriptors_and_shares(core_host: CoreHost, tmp_path: Path) -> None:
    envelope = _run(core_host, _fleet(tmp_path), "Get-IisContentAcl", _lab_parameters())
    by_site = {p["site"]: p for p in envelope["data"]["paths"]}
    assert by_site["Shop"]["exists"] is True and by_site["Shop"]["sddl"] == SDDL_SITE
    assert by_site["Missing"]["exists"] is False and by_site["Missing"]["sddl"] is None
    assert by_site["Farm"]["is_unc"] and by_site["Farm"]["share"] == {"server": "fs01", "name": "content",
                                                                       "sddl": SDDL_SHARE}
    assert [(e["probe"], e["category"], e["target"]) for e in envelope["errors"]] == \
        [("physical-path", "not-found", "C:\\inetpub\\gone")]


@pytest.mark.parametrize("marker, visible", [("locked", True), ("inetpub\\locked", True)])
def test_access_denied_is_never_reported_as_not_found(core_host: CoreHost, tmp_path: Path, marker: str,
                                                      visible: bool) -> None:
    envelope = _run(core_host, _fleet(tmp_path), "Test-ContentAclDenied", _lab_parameters(DenyMarker=marker))
    locked = next(p for p in envelope["data"]["paths"] if p["site"] == "Locked")
    errors = {e["target"]: e for e in envelope["errors"]}
    assert errors["C:\\inetpub\\locked"]["category"] == "access-denied"
    assert errors["C:\\inetpub\\locked"]["probe"] == "physical-path"  # hidden from this session, not missing
    assert "may exist" in errors["C:\\inetpub\\locked"]["message"]
    assert locked["sddl"] is None and locked["exists"] is False
    assert errors["C:\\inetpub\\gone"]["category"] == "not-found"


def test_a_share_that_cannot_be_read_is_reported_once(core_host: CoreHost, tmp_path: Path) -> None:
    envelope = _run(core_host, _fleet(tmp_path), "Test-ContentAclDenied", _lab_parameters(DenyShares=True))
    share_errors = [e for e in envelope["errors"] if e["probe"] == "share-acl"]
    assert [(e["category"], e["target"]) for e in share_errors] == [("access-denied", "\\\\fs01\\content")]
    farms = [p for p in envelope["data"]["paths"] if p["site"].startswith("Farm")]
    assert [p["share"] for p in farms] == [None, None]


def test_max_paths_caps_with_an_error(core_host: CoreHost, tmp_path: Path) -> None:
    envelope = _run(core_host, _fleet(tmp_path), "Get-IisContentAcl", _lab_parameters(MaxPaths=2))
    assert len(envelope["data"]["paths"]) == 2
    assert any(e["probe"] == "max-paths" and e["category"] == "cap" for e in envelope["errors"])
