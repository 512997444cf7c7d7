"""Write run directories described by a YAML file (fixtures/*.yml), as `iisfleet run` would leave them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")


def write_run(base: Path, spec: dict[str, Any]) -> Path:
    run_dir = base / spec["name"]
    hosts = spec["hosts"]
    _write(run_dir / "run.json", {"schema": "iisfleet.run/1", "playbook": spec["playbook"], "parameters": {},
                                  "inventory": "fleet.yml", "started_utc": spec["started_utc"],
                                  "finished_utc": spec["started_utc"], "status": "complete",
                                  "hosts": sorted(hosts), "simulated": True})
    for name, status in hosts.items():
        error = None if status == "ok" else {"category": "connect", "message": "connection refused",
                                             "explanation": "WinRM listener not running"}
        _write(run_dir / "hosts" / name / "host.json",
               {"schema": "iisfleet.host/1", "host": name, "address": f"{name}.lab.test", "transport": "winrm",
                "status": status, "finished": True, "duration_s": 1.0, "error": error, "steps": []})
    findings, matrix = [], []
    for index, f in enumerate(spec.get("findings") or []):
        findings.append({"id": f"f{index:07d}", "cause": f["cause"], "title": f["cause"], "substatus": "401.1",
                         "severity": f["severity"], "confidence": {"level": "high", "reason": "fixture"},
                         "hosts": f["hosts"], "site": f["site"], "scope": "/",
                         "terminal_401": f["site_401"] * len(f["hosts"]), "evidence": [], "missing_evidence": [],
                         "explanation": "", "fix": None})
        matrix += [{"server": h, "site": f["site"], "requests": 1000, "terminal_401": f["site_401"]} for h in f["hosts"]]
    report = {"schema": "iisfleet.report/1", "hosts": [{"name": n, "status": s} for n, s in hosts.items()],
              "findings": findings, "matrix": matrix, "drift": spec.get("drift") or []}
    _write(run_dir / "report" / "report.json", report)
    return run_dir


def write_runs(base: Path, fixture: str = "daily-sweeps.yml") -> list[Path]:
    spec = yaml.safe_load((FIXTURES / fixture).read_text(encoding="utf-8"))
    return [write_run(base, run) for run in spec["runs"]]
