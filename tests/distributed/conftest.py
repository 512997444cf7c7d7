"""Fixtures for distributed runs: a real redis-server and a lab fleet served over WinRM in two zones.

The tests need Celery and redis-py (the `test` extra) and Debian's redis-server (`.ci/run` installs it);
they skip, saying which, only when those could not be installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from celery_fleet import BUDGET, zone_inventory

try:
    import celery  # noqa: F401
    import redis  # noqa: F401

    MISSING = None if shutil.which("redis-server") else "redis-server is not installed (apt-get install redis-server failed)"
except ImportError as exc:
    MISSING = f"celery/redis-py could not be installed: {exc}"

HOSTS = 12


@pytest.fixture
def redis_server(tmp_path: Path):
    if MISSING:
        pytest.skip(MISSING)
    from toolkit.lab.broker import RedisServer

    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def zoned_lab(tmp_path_factory):
    """seed-catalog, 12 hosts, served for the module; hosts alternate between zones `dmz` and `branch`."""
    if MISSING:
        pytest.skip(MISSING)
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer

    work = tmp_path_factory.mktemp("zoned-lab")
    fleet_dir = work / "fleet"
    generate("seed-catalog", HOSTS, fleet_dir, seed=0)
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory = write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path,
                                    fleet_dir / "inventory.yml")
        names = sorted(server.endpoints())
        zones = {name: ("dmz" if index % 2 == 0 else "branch") for index, name in enumerate(names)}
        yield zone_inventory(Path(inventory), zones, time_budget=BUDGET), zones


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3-protocol server as its own process on a free loopback port: a stand-in for the object
    storage an admin configures (AWS S3, MinIO, Ceph RGW); nothing here reaches a real S3."""
    try:
        import boto3
        import moto  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"moto[server] could not be installed: {exc}")
    import subprocess
    import sys
    import time
    import urllib.request

    from toolkit.lab.broker import free_port, stop_process

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()  # noqa: S310
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                pytest.fail(f"moto_server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDLABTEST",
                          aws_secret_access_key="lab-secret-not-real")
    try:
        yield url, client
    finally:
        stop_process(process)
