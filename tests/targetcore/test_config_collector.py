"""Get-IisConfig's C# core (IisFleet.Target.ConfigCollector), run for real under Mono in the lab harness:
files whole or not at all, a large applicationHost.config never cut, shared configuration recorded,
access denied reported as such (never as not-found), and the envelope valid against the sidecar."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from toolkit.collectors import get_collector
from toolkit.contract import decode_blob, validate_envelope
from toolkit.lab.model.coreanswers import with_defaults
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.lab.model.corehost import CoreHost, SimulatedHost

CONFIG = "C/Windows/System32/inetsrv/config"
SHARE = "\\\\fs01\\iisconfig$"


def _site(index: int, root: str) -> str:
    return (f'<site name="Site{index}" id="{index}"><application path="/" applicationPool="Pool{index}">'
            f'<virtualDirectory path="/" physicalPath="{root}\\site{index}" /></application>'
            f'<bindings><binding protocol="http" bindingInformation="*:80:site{index}.example.com" /></bindings></site>')


def _fleet(tmp_path: Path, *, sites: int = 2, padding: int = 0, redirection: str | None = None) -> Path:
    root = tmp_path / "files"
    (root / CONFIG).mkdir(parents=True)
    body = "".join(_site(i, "%SystemDrive%\\inetpub") for i in range(1, sites + 1))
    # Random hex: gzip cannot shrink it much, so the blob's base64 stays about as large as the file.
    filler = "<!-- " + os.urandom(padding // 2).hex() + " -->" if padding else ""
    (root / CONFIG / "applicationHost.config").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<configuration>{filler}<system.applicationHost><sites>{body}'
        '</sites></system.applicationHost></configuration>\n', "utf-8")
    if redirection is not None:
        (root / CONFIG / "redirection.config").write_text(redirection, "utf-8")
    for i in range(1, min(sites, 3) + 1):
        folder = root / "C" / "inetpub" / f"site{i}" / "app"
        folder.mkdir(parents=True)
        (root / "C" / "inetpub" / f"site{i}" / "web.config").write_text(f"<configuration><!-- site {i} --></configuration>")
        (folder / "web.config").write_text("<configuration>" + "y" * 3000 + "</configuration>")
    return root


def _collect(core_host: CoreHost, root: Path, collector: str = "Get-IisConfig", **parameters: object) -> dict:
    config = get_collector("Get-IisConfig")
    bound = with_defaults(config, config.bind({k: v for k, v in parameters.items() if k != "DenyMarker"}))
    if "DenyMarker" in parameters:
        bound["DenyMarker"] = parameters["DenyMarker"]
    host = SimulatedHost("WEB01", "2026-11-24T21:00:00Z", mounts=PresentedFiles(root, timedelta(0)).mounts(), variables=dict(HOST_VARIABLES))
    answer = core_host.run(collector, host, bound)
    assert answer.error is None, answer.error
    [text] = answer.outputs
    return validate_envelope(text, collector=config, host="web01")


def test_envelope_is_valid_and_finds_every_web_config(core_host: CoreHost, tmp_path: Path) -> None:
    envelope = _collect(core_host, _fleet(tmp_path))
    data = envelope["data"]
    assert data["application_host_config"]["path"] == "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
    found = sorted((w["site"], w["virtual_path"]) for w in data["web_configs"])
    assert found == [("Site1", "/"), ("Site1", "/app"), ("Site2", "/"), ("Site2", "/app")]
    assert data["redirection_config"] is None and data["shared_configuration"] is None
    assert envelope["errors"] == []


def test_a_large_application_host_config_is_never_cut(core_host: CoreHost, tmp_path: Path) -> None:
    # 3 MB of random hex: over MaxBytes, and its base64 is over the JSON writer's 1 MB string cap.
    root = _fleet(tmp_path, sites=500, padding=3_000_000)
    original = (root / CONFIG / "applicationHost.config").read_bytes()
    envelope = _collect(core_host, root, MaxBytes=4000)
    blob = envelope["data"]["application_host_config"]["content"]
    assert blob["truncated"] is False and decode_blob(blob) == original
    assert not [e for e in envelope["errors"] if e["target"].endswith("applicationHost.config")]
    # The web.configs share the MaxBytes budget: each is whole, or left out whole with a cap error.
    kept = envelope["data"]["web_configs"]
    assert all(not w["content"]["truncated"] for w in kept)
    assert sum(w["content"]["bytes"] for w in kept) <= 4000
    assert any(e["category"] == "cap" and e["probe"] == "max-bytes" for e in envelope["errors"])


def test_shared_configuration_is_detected_and_its_credentials_are_not_read(core_host: CoreHost, tmp_path: Path) -> None:
    redirection = ('<configuration><configSections><section name="configurationRedirection" /></configSections>'
                   f'<configurationRedirection enabled="true" path="{SHARE}" userName="CORP\\svc_share" '
                   'password="[enc:IISWASOnlyRsaProvider:CIPHER:enc]" /></configuration>')
    envelope = _collect(core_host, _fleet(tmp_path, redirection=redirection))
    assert envelope["data"]["shared_configuration"] == {"enabled": True, "path": SHARE}
    assert decode_blob(envelope["data"]["redirection_config"]["content"]).decode() == redirection
    off = _collect(core_host, _fleet(tmp_path / "off", redirection=redirection.replace('"true"', '"false"')))
    assert off["data"]["shared_configuration"] == {"enabled": False, "path": SHARE}


def test_the_diagnosis_warns_from_the_cores_record(core_host: CoreHost, tmp_path: Path) -> None:
    from toolkit.diagnose.evidence import build_host_evidence

    redirection = f'<configuration><configurationRedirection enabled="true" path="{SHARE}" /></configuration>'
    envelope = _collect(core_host, _fleet(tmp_path, redirection=redirection))
    evidence = build_host_evidence("web01", {"Get-IisConfig": envelope})
    assert evidence.shared_config == SHARE and "SHARED CONFIGURATION" in evidence.missing["shared-config"]


@pytest.mark.parametrize("marker, probe", [("site2\\app", "web.config-search"), ("site1", "physical-path"),
                                           ("applicationHost", "applicationHost.config")])
def test_access_denied_is_reported_as_denied_not_as_missing(core_host: CoreHost, tmp_path: Path, marker: str,
                                                            probe: str) -> None:
    envelope = _collect(core_host, _fleet(tmp_path), "Test-ConfigDenied", DenyMarker=marker)
    denied = [e for e in envelope["errors"] if e["category"] == "access-denied"]
    assert [e["probe"] for e in denied] == [probe], envelope["errors"]
    assert not [e for e in envelope["errors"] if e["category"] in ("not-found", "not-installed")]


def test_a_missing_physical_path_is_not_found_and_a_missing_config_is_not_installed(core_host: CoreHost,
                                                                                    tmp_path: Path) -> None:
    root = _fleet(tmp_path, sites=4)  # site4's folder was never created
    envelope = _collect(core_host, root)
    assert [(e["probe"], e["category"]) for e in envelope["errors"]] == [("physical-path", "not-found")]
    (root / CONFIG / "applicationHost.config").unlink()
    bare = _collect(core_host, root)
    assert bare["data"]["application_host_config"] is None and bare["data"]["web_configs"] == []
    assert [(e["probe"], e["category"]) for e in bare["errors"]] == [("applicationHost.config", "not-installed")]


def test_the_lab_answers_get_iisconfig_through_the_core(tmp_path: Path) -> None:
    """A generated lab host's Get-IisConfig comes from the C# core (no Python model of it is left)."""
    from toolkit.lab import scenarios
    from toolkit.lab.model import backend as model_backend
    from toolkit.lab.model import load_fleet

    assert not hasattr(model_backend.ModelBackend, "_iis_config")
    scenarios.generate("healthy", 1, tmp_path / "fleet")
    _, backend = load_fleet(tmp_path / "fleet").hosts[0]
    config = get_collector("Get-IisConfig")
    answer = backend.answer(config.script, {})
    assert answer.error is None, answer.error
    envelope = validate_envelope(answer.output[0], collector=config, host="web01")
    assert json.loads(answer.output[0])["data"]["application_host_config"]["content"]["sha256"]
    assert envelope["data"]["web_configs"]
