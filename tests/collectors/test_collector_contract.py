"""toolkit.contract: what a host printed is untrusted until validate_envelope and decode_blob say so."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from typing import Any

import pytest

from toolkit.collectors import load_catalog
from toolkit.contract import decode_blob, validate_envelope
from toolkit.errors import ContractError

CATALOG = load_catalog()


def sample(collector_id: str) -> dict[str, Any]:
    return copy.deepcopy(CATALOG[collector_id].sidecar["output"]["sample"])


def dumps(envelope: Any) -> str:
    # PowerShell's ConvertTo-Json -Compress writes one line, like this.
    return json.dumps(envelope, separators=(",", ":"))


@pytest.mark.parametrize("collector_id", sorted(CATALOG))
def test_every_sidecar_sample_is_a_valid_envelope(collector_id: str) -> None:
    collector = CATALOG[collector_id]
    envelope = validate_envelope(dumps(sample(collector_id)), collector=collector, host="web01")
    assert envelope["collector"] == collector_id and envelope["version"] == collector.version


def test_partial_answer_with_errors_is_accepted() -> None:
    envelope = sample("Get-AuthEventLog")
    envelope["data"]["events"] = []
    envelope["data"]["crash_on_audit_fail"] = None
    envelope["errors"] = [{"probe": "security-events", "target": "Security", "category": "access-denied",
                           "message": "Attempted to perform an unauthorized operation."}]
    result = validate_envelope("\ufeff" + dumps(envelope) + "\r\n", collector=CATALOG["Get-AuthEventLog"], host="web01")
    assert result["errors"][0]["category"] == "access-denied"


def _mutate(path: str, value: Any) -> Any:
    def apply(envelope: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = envelope
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (_mutate("schema", "iisfleet.collector/2"), "schema is 'iisfleet.collector/2'"),
        (_mutate("collector", "Get-IisSpn"), "came from collector 'Get-IisSpn'"),
        (_mutate("version", 3), "version 3, this iisfleet bundles version 2"),
        (_mutate("version", True), "version True"),
        (_mutate("host", ""), "'host' must be a non-empty string"),
        (_mutate("time_utc", "24/11/2026 21:00"), "time_utc"),
        (_mutate("data", []), "'data' must be an object"),
        (_mutate("errors", {}), "'errors' must be a list"),
        (_mutate("errors", [{"probe": "x", "message": "m", "category": "fatal"}]), r"errors\[0\].category is 'fatal'"),
        (_mutate("errors", [{"probe": "x", "category": "io"}]), r"errors\[0\].message must be a string"),
        (_mutate("data.files", _DELETE), "data.files is missing"),
        (_mutate("data.files.0.lines_total", "18004"), r"data.files\[0\].lines_total is str, expected int"),
        (_mutate("data.files.0.lines_total", True), "is a boolean, expected int"),
        (_mutate("data.files.0.site_id", None), None),
        (_mutate("data.files.0.path", None), r"data.files\[0\].path is null, expected string"),
        (_mutate("data.files.0.excerpt.encoding", "zip"), "encoding is 'zip'"),
        (_mutate("data.files.0.excerpt.bytes", -1), "bytes must be a non-negative integer"),
        (_mutate("data.files.0.excerpt", "H4sI"), "expected a blob object"),
        (_mutate("data.directories", ["C:\\logs", 5]), r"data.directories\[1\] is int, expected string"),
    ],
)
def test_envelope_that_breaks_the_contract_is_refused(mutation: Any, message: str | None) -> None:
    envelope = sample("Get-IisW3CLog")
    mutation(envelope)
    collector = CATALOG["Get-IisW3CLog"]
    if message is None:
        validate_envelope(dumps(envelope), collector=collector, host="web01")
        return
    with pytest.raises(ContractError, match=message) as caught:
        validate_envelope(dumps(envelope), collector=collector, host="web01")
    error = caught.value
    assert error.category == "contract" and error.host == "web01" and error.collector == "Get-IisW3CLog"
    assert str(error).startswith("web01: Get-IisW3CLog: ")


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "printed nothing"),
        ("   \r\n", "printed nothing"),
        ('{"schema":"iisfleet.collector/1","collector":"Get-IisSpn","da', "not valid JSON"),
        ("[1, 2, 3]", "JSON list, expected an object"),
        ('"just a string"', "JSON str, expected an object"),
        ("WARNING: something\n{}", "printed 2 lines"),
        ('{"a": NaN}', "not valid JSON"),
        ("<Objs Version=\"1.1.0.1\">", "not valid JSON"),
    ],
)
def test_output_that_is_not_one_json_object_is_refused(stdout: str, message: str) -> None:
    with pytest.raises(ContractError, match=message) as caught:
        validate_envelope(stdout, collector=CATALOG["Get-IisSpn"], host="web02")
    assert caught.value.explanation is None or caught.value.explanation


def test_truncated_output_explains_the_likely_cause() -> None:
    text = dumps(sample("Get-IisSpn"))
    with pytest.raises(ContractError) as caught:
        validate_envelope(text[: len(text) // 2], collector=CATALOG["Get-IisSpn"], host="web02")
    assert "cut off" in (caught.value.explanation or "")


def test_oversize_output_is_refused_before_parsing() -> None:
    text = dumps(sample("Get-IisSpn"))
    with pytest.raises(ContractError, match="over the 100 cap") as caught:
        validate_envelope(text, collector=CATALOG["Get-IisSpn"], host="web03", max_chars=100)
    assert "MaxBytes" in (caught.value.explanation or "")


def test_deeply_nested_json_is_refused_cleanly() -> None:
    with pytest.raises(ContractError):
        validate_envelope("[" * 100_000 + "]" * 100_000, collector=CATALOG["Get-IisSpn"], host="web03")


# -------------------------------------------------------------------------------- decode_blob


def gz_blob(data: bytes, **extra: Any) -> dict[str, Any]:
    blob = {"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(data)).decode(),
            "bytes": len(data), "truncated": False}
    blob.update(extra)
    return blob


def test_decode_every_encoding() -> None:
    text = "17\t2026-11-24 10:00:01 GET /app 401 2 5\n".encode()
    assert decode_blob(gz_blob(text)) == text
    assert decode_blob(gz_blob(text, sha256=hashlib.sha256(text).hexdigest())) == text
    utf16 = "[Unicode]\r\nUnicode=yes\r\n".encode("utf-16-le")
    assert decode_blob({"encoding": "base64", "content": base64.b64encode(utf16).decode(),
                        "bytes": len(utf16), "truncated": False}) == utf16
    assert decode_blob({"encoding": "text", "content": "ü", "bytes": 2, "truncated": True}) == "ü".encode()


def test_decode_sidecar_sample_blobs() -> None:
    config = sample("Get-IisConfig")["data"]["application_host_config"]["content"]
    assert decode_blob(config).startswith(b"<configuration>")
    inf = sample("Get-LocalUserRight")["data"]["secedit_inf"]
    assert decode_blob(inf).decode("utf-16-le").startswith("[Unicode]")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        ({"encoding": "gzip+base64", "content": "!!!", "bytes": 1, "truncated": False}, "not valid base64"),
        ({"encoding": "gzip+base64", "content": base64.b64encode(b"not gzip").decode(), "bytes": 8,
          "truncated": False}, "not valid gzip"),
        (gz_blob(b"abc", bytes=4), "decodes to 3 bytes but declares 4"),
        ({"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(b"x" * 1000)[:-12]).decode(),
          "bytes": 1000, "truncated": False}, "incomplete"),
        ({"encoding": "rot13", "content": "", "bytes": 0, "truncated": False}, "encoding is 'rot13'"),
        ({"encoding": "text", "content": "x", "bytes": 1}, "truncated must be true or false"),
        ([1, 2], "expected a blob object"),
        (gz_blob(b"abc", sha256=hashlib.sha256(b"abd").hexdigest()), "does not match its sha256"),
        (gz_blob(b"abc", sha256="ABC"), "sha256 must be 64 lower-case hex digits"),
    ],
)
def test_bad_blobs_are_refused(blob: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message) as caught:
        decode_blob(blob, host="web04", collector="Get-IisConfig", field="data.web_configs[0].content")
    assert str(caught.value).startswith("web04: Get-IisConfig: data.web_configs[0].content: ")


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gz_blob(b"\0" * 5_000_000)
    assert len(bomb["content"]) < 10_000
    with pytest.raises(ContractError, match="over the 1,000,000 cap"):
        decode_blob(bomb, max_bytes=1_000_000)
    lying = dict(bomb, bytes=10)
    with pytest.raises(ContractError, match="inflates to more than the 100,000-byte cap"):
        decode_blob(lying, max_bytes=100_000)


def test_oversize_encoded_content_is_refused_before_decoding() -> None:
    blob = {"encoding": "base64", "content": "A" * 20_000, "bytes": 10, "truncated": False}
    with pytest.raises(ContractError, match="over the cap"):
        decode_blob(blob, max_bytes=1000)

