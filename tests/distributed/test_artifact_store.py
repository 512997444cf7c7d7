"""Evidence through an S3-protocol artifact store (toolkit/distributed/objectstore.py).

The store here is moto's S3 server, a separate process speaking the S3 protocol (a stand-in for AWS S3,
MinIO or Ceph RGW: no real S3 runs here). boto3 is the independent client that reads back and tampers with
what ours wrote, and botocore's own Signature Version 4 signer is the reference for ours (moto does not
check signatures).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
import yaml
from celery_fleet import events
from test_celery_runs import VISIBILITY, _run_cli, assert_same_run

from toolkit.distributed.objectstore import (
    ArtifactStoreConfig,
    ObjectStore,
    StoreError,
    assemble_stored,
    fetch_envelope,
    store_envelope,
)
from toolkit.errors import InventoryError
from toolkit.inventory import load_inventory
from toolkit.inventory.credentials import CredentialRef
from toolkit.lab.broker import start_worker, stop_process
from toolkit.rundir import RunDirWriter

SECRET_ENV = "IISFLEET_TEST_STORE_SECRET"
SECRET = "lab-secret-not-real"


def _store(url: str, bucket: str, *, region: str = "us-east-1") -> ObjectStore:
    ref = CredentialRef(name="store", username="AKIDLABTEST", kind="env", reference=SECRET_ENV)
    return ObjectStore(ArtifactStoreConfig(url=url, bucket=bucket, credential=ref, region=region), "AKIDLABTEST",
                       SECRET)


def test_our_signature_is_botocores(monkeypatch) -> None:
    """The Authorization header equals botocore's SigV4 for the same request (the protocol's reference)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    store = _store("https://s3.eu-west-1.example.test", "evidence", region="eu-west-1")
    when = dt.datetime(2026, 12, 4, 21, 0, 0, tzinfo=dt.timezone.utc)
    body = b"\x1f\x8b evidence bytes"
    url, host = store._target("runs/abc/web 01/1/Get-IisConfig.json.gz")
    ours = store._signed_headers("PUT", url, host, body, {"Content-Type": "application/gzip"}, when)

    request = AWSRequest(method="PUT", url=url, data=body, headers={"Content-Type": "application/gzip"})
    signer = S3SigV4Auth(Credentials("AKIDLABTEST", SECRET), "s3", "eu-west-1")
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None))
    signer.add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]


def test_envelopes_round_trip_and_a_replaced_object_is_caught(s3_server) -> None:
    url, boto = s3_server
    boto.create_bucket(Bucket="roundtrip")
    store = _store(url, "roundtrip")
    envelope = {"schema": 1, "collector": "Get-IisConfig", "data": {"sites": ["Default Web Site"], "note": "é ✓"}}
    reference = store_envelope(store, "run1", "web01", 1, "Get-IisConfig", envelope)
    assert reference["key"] == "iisfleet/run1/web01/1/Get-IisConfig.json.gz"
    # another S3 client reads what ours wrote: gzip of the envelope's JSON
    stored = boto.get_object(Bucket="roundtrip", Key=reference["key"])["Body"].read()
    assert json.loads(gzip.decompress(stored)) == envelope
    assert fetch_envelope(store, reference) == envelope

    boto.put_object(Bucket="roundtrip", Key=reference["key"],
                    Body=gzip.compress(json.dumps({**envelope, "data": {}}).encode()))
    with pytest.raises(StoreError, match="SHA-256 mismatch"):
        fetch_envelope(store, reference)
    boto.delete_object(Bucket="roundtrip", Key=reference["key"])
    with pytest.raises(StoreError, match="HTTP 404 NoSuchKey"):
        fetch_envelope(store, reference)


def test_the_controller_writes_checked_envelopes_and_fails_the_step_of_a_damaged_one(s3_server,
                                                                                      tmp_path: Path) -> None:
    url, boto = s3_server
    boto.create_bucket(Bucket="assemble")
    store = _store(url, "assemble")
    good = {"schema": 1, "collector": "Get-HostFact", "data": {"iis_installed": True}}
    bad = {"schema": 1, "collector": "Get-IisConfig", "data": {"sites": []}}
    references = [store_envelope(store, "run2", "web01", 1, "Get-HostFact", good),
                  store_envelope(store, "run2", "web01", 1, "Get-IisConfig", bad)]
    boto.put_object(Bucket="assemble", Key=references[1]["key"], Body=gzip.compress(b'{"planted": true}'))
    document = {"host": "web01", "status": "ok", "steps": [{"collector": "Get-HostFact", "status": "ok"},
                                                           {"collector": "Get-IisConfig", "status": "ok"}]}
    writer = RunDirWriter(tmp_path / "run")
    try:
        assemble_stored(store, writer, "web01", document, references, {"Get-HostFact", "Get-IisConfig"})
    finally:
        writer.close()
    host_dir = writer.host_path("web01")
    assert json.loads((host_dir / "Get-HostFact.json").read_text(encoding="utf-8")) == good
    assert not (host_dir / "Get-IisConfig.json").exists(), "unchecked evidence must not enter the run directory"
    assert document["steps"][1]["status"] == "failed" and "SHA-256" in document["steps"][1]["error"]["message"]
    assert document["status"] == "partial"
    # verified objects are removed (keep: false); the rejected one is left for inspection
    left = [o["Key"] for o in boto.list_objects_v2(Bucket="assemble").get("Contents", [])]
    assert left == [references[1]["key"]]
    assert [e["event"] for e in events(tmp_path / "run")].count("artifact_rejected") == 1


def test_inventory_section_is_validated_with_file_and_line(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("credentials:\n  s3: {username: AKID, password: {env: S3_SECRET}}\n"
                         "artifact_store:\n  url: https://s3.example.test\n  bucket: b\n  credential: s3\n"
                         "  addressing: sideways\nhosts:\n  web01: {address: 10.0.0.1}\n", encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory)
    assert "addressing" in str(caught.value) and caught.value.line == 7
    inventory.write_text(inventory.read_text(encoding="utf-8").replace("sideways", "virtual"), encoding="utf-8")
    config = load_inventory(inventory).artifact_store
    assert (config.bucket, config.addressing, config.credential.kind, config.credential.reference) == \
        ("b", "virtual", "env", "S3_SECRET")


def test_a_celery_run_through_the_store_gives_the_local_run_directory(zoned_lab, redis_server, s3_server,
                                                                      tmp_path: Path, monkeypatch) -> None:
    """Workers put every envelope in the store (the secret by reference, from their environment); the
    controller fetches, checks and writes them: same run directory as a local run, secret nowhere."""
    inventory, zones = zoned_lab
    url, boto = s3_server
    boto.create_bucket(Bucket="fleet-evidence")
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    document.setdefault("credentials", {})["evidence-store"] = {"username": "AKIDLABTEST",
                                                                "password": {"env": SECRET_ENV}}
    document["artifact_store"] = {"url": url, "bucket": "fleet-evidence", "credential": "evidence-store",
                                  "prefix": "sweeps/", "keep": True}
    stored_inventory = inventory.with_name("store-inventory.yml")
    stored_inventory.write_text(yaml.safe_dump(document), encoding="utf-8")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    dmz = ",".join(sorted(name for name, zone in zones.items() if zone == "dmz"))
    worker = start_worker("dmz", stored_inventory, redis_server.url, visibility=VISIBILITY, log=tmp_path / "dmz.log")
    try:
        local = _run_cli("run", "triage-401", "-i", str(stored_inventory), "--limit", dmz, "--out",
                         str(tmp_path / "local"))
        remote = _run_cli("run", "triage-401", "-i", str(stored_inventory), "--limit", dmz, "--out",
                          str(tmp_path / "celery"), "--engine", "celery", "--broker", redis_server.url,
                          "--visibility-timeout", str(VISIBILITY))
    finally:
        stop_process(worker)
    assert_same_run(local, remote, tmp_path / "local", tmp_path / "celery")
    envelopes = sorted(str(p.relative_to(tmp_path / "celery" / "hosts")).removesuffix(".json")
                       for p in (tmp_path / "celery" / "hosts").glob("*/*.json") if p.name != "host.json")
    objects = sorted(o["Key"] for o in boto.list_objects_v2(Bucket="fleet-evidence").get("Contents", []))
    assert envelopes and [k.removeprefix("sweeps/").split("/", 1)[1].replace("/1/", "/").removesuffix(".json.gz")
                          for k in objects] == envelopes, "each envelope came through the store, once"
    # the secret is resolved by each side from its environment: never in the broker, the run or the logs
    for key in redis_server.client.keys("*"):
        kind = redis_server.client.type(key)
        if kind == b"string":
            assert SECRET.encode() not in redis_server.client.get(key)
    for path in (tmp_path / "celery").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in (tmp_path / "dmz.log").read_text(errors="replace")


def test_a_worker_without_the_store_fails_the_step_with_a_config_error(tmp_path: Path) -> None:
    from toolkit.distributed.worker import _RemoteWriter
    from toolkit.errors import HostError

    writer = _RemoteWriter({"run": "r", "delivery": "store", "artifact_url": "", "token": ""}, None, None)
    with pytest.raises(HostError, match="no artifact_store") as caught:
        writer.write_envelope("web01", "Get-HostFact", {"schema": 1})
    assert caught.value.category == "config"
