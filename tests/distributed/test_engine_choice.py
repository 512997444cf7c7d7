"""Which engine a run uses: --engine, else IISFLEET_ENGINE, else the inventory's ``engine:``, else local.

Real parts: the zoned lab fleet over WinRM and a real redis-server with no worker listening. A run that
takes the Celery engine is told at once that no worker serves its hosts' zone; a local run works the host.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from toolkit.cli import app


def _with_engine(inventory: Path, engine: str | None) -> Path:
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    if engine is not None:
        document["engine"] = engine
    out = inventory.with_name(f"engine-{engine}-inventory.yml")
    out.write_text(yaml.safe_dump(document), encoding="utf-8")
    return out


def _run(inventory: Path, out: Path, broker: str, *flags: str, env_engine: str | None = None) -> dict:
    env = {"IISFLEET_HISTORY": "off", "IISFLEET_BROKER": broker, "IISFLEET_ENGINE": env_engine}
    result = CliRunner().invoke(app, ["run", "health-sweep", "-i", str(inventory), "--limit", "web01", "--json",
                                      "--out", str(out), "--broker-grace", "5", *flags], env=env)
    assert "Traceback" not in result.output, result.output
    summary = json.loads(result.stdout)
    return {"exit": result.exit_code, "status": summary["hosts"][0]["status"],
            "error": (summary["hosts"][0]["error"] or {}).get("message", "")}


@pytest.mark.parametrize(("inventory_engine", "env_engine", "flags", "expected"), [
    ("celery", None, (), "celery"),                       # the inventory decides when nothing else does
    ("celery", "local", (), "local"),                     # IISFLEET_ENGINE beats the inventory
    ("local", "celery", (), "celery"),
    ("celery", "celery", ("--engine", "local"), "local"),  # --engine beats both
    (None, None, (), "local"),                            # nothing said anywhere: local
])
def test_engine_precedence_cli_env_inventory(zoned_lab, redis_server, tmp_path: Path, inventory_engine, env_engine,
                                             flags, expected) -> None:
    zoned, _ = zoned_lab
    inventory = _with_engine(zoned, inventory_engine)
    outcome = _run(inventory, tmp_path / "run", redis_server.url, *flags, env_engine=env_engine)
    if expected == "local":
        assert outcome["status"] == "ok", outcome
    else:  # no `iisfleet worker` serves the host's zone: the Celery engine fails the host at once, saying so
        assert outcome["status"] == "failed" and "no worker serves zone" in outcome["error"], outcome
