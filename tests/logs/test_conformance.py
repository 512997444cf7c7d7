"""Conformance: every public IIS test log parses, and fields match the other projects' expected results.

Apache-2.0 and MIT files live in tests/fixtures/logs; the rest of the corpus is read from
../shared/conformance when it exists. Lines treated differently on purpose are listed in DEVIATIONS
(and in docs/analyze.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from toolkit.errors import InputError
from toolkit.logs import LogAnalyzer, iter_records
from toolkit.logs.engine import win32_fits
from toolkit.logs.w3c import Record

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "logs"
# The CI copies shared/ beside the clone; a plain checkout may not have it (those cases are then skipped).
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"

LOG_SUFFIXES = (".log", ".0", ".2", ".3", ".5", ".6")


def _logs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES)
                  and not p.name.endswith("-expected.json"))


def _corpus() -> list[Path]:
    files = _logs(FIXTURES)
    if SHARED_CONFORMANCE.is_dir():
        for folder in ("elastic-integrations-iis", "iis-w3c-samples"):
            files += [p for p in _logs(SHARED_CONFORMANCE / folder) if "brianary-scripts" not in p.parts]
    return files


#: (file name, line number): why iisfleet reads the line differently from the expected results.
DEVIATIONS = {
    # Headerless lines with 16 fields (default layout + a trailing X-Forwarded-For): with no #Fields in
    # force and no documented IIS layout of that width, iisfleet counts them as malformed instead of guessing.
    **{("test-x-forward-for.log", n): "headerless 16-field line" for n in range(1, 10)},
    # The c-ip/s-ip fields hold Markdown links ("[10.100.118.31](http://...)"), an artefact of how the
    # upstream file was edited. Elastic's grok pulls an address out of them; iisfleet keeps the field as
    # logged (it is still one space-free field, so the line is well formed).
    ("test-iis-7.5.log", 5): "Markdown-mangled address fields",
    # Headerless lines with 23 fields (all standard fields + X-Forwarded-For): no documented default layout.
    **{("test-x-forward-for-extended.log", n): "headerless 23-field line" for n in range(1, 7)},
    # 15-field lines appended after a 22-field #Fields block: the field count does not match the layout
    # in force, so they are malformed (Elastic's grok matches them by shape).
    **{("test.log", n): "15 fields under a 22-field #Fields" for n in range(16, 19)},
}

#: Files in the corpus that are not W3C extended logs at all: `analyze` rejects them with a clear error.
NOT_W3C = {
    "ex010320.log": "IIS native (comma-separated) log format",
    "u_in211001.log": "IIS native (comma-separated) log format",
    "iis-logs.log": "IIS logging ETW events rendered as XML",
}


def _expected_pairs() -> list[tuple[Path, Path]]:
    pairs = []
    for expected in sorted(FIXTURES.rglob("*-expected.json")):
        pairs.append((expected.with_name(expected.name.removesuffix("-expected.json")), expected))
    if SHARED_CONFORMANCE.is_dir():
        for expected in sorted((SHARED_CONFORMANCE / "elastic-integrations-iis").rglob("*-expected.json")):
            pairs.append((expected.with_name(expected.name.removesuffix("-expected.json")), expected))
    return pairs


def _flatten(event: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in event.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _compare(record: Record, event: dict) -> list[str]:
    """Field-by-field differences between our record and one expected event."""
    f = record.fields
    problems = []

    def check(name: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            problems.append(f"{name}: ours {ours!r} expected {theirs!r}")

    if "http.response.status_code" in event:
        check("status", int(f["sc-status"]), event["http.response.status_code"])
    if "iis.access.sub_status" in event:
        check("substatus", int(f["sc-substatus"]), event["iis.access.sub_status"])
    if "iis.access.win32_status" in event:
        check("win32", int(f["sc-win32-status"]), event["iis.access.win32_status"])
    if "http.request.method" in event:
        check("method", _text(f["cs-method"]), event["http.request.method"])
    if "url.path" in event:
        stem = f.get("cs-uri-stem") or f["cs-uri"].split(b"?", 1)[0]
        # Elastic percent-decodes the path; compare on the same footing.
        check("uri", unquote(_text(stem)), unquote(event["url.path"]))
    if "user.name" in event:
        check("user", _text(f["cs-username"]), event["user.name"])
    if "source.address" in event:
        check("client", _text(f["c-ip"]), event["source.address"])
    if "iis.error.reason_phrase" in event:
        check("reason", _text(f["s-reason"]), event["iis.error.reason_phrase"])
    if "iis.error.queue_name" in event:
        check("queue", _text(f["s-queuename"]), event["iis.error.queue_name"])
    return problems


@pytest.mark.parametrize("log,expected", _expected_pairs(), ids=lambda p: p.name)
def test_fields_match_expected_results(log: Path, expected: Path) -> None:
    document = json.loads(expected.read_text("utf-8"))
    events = [_flatten(e) for e in (document["expected"] if isinstance(document, dict) else document)]
    malformed: list[tuple[str, int, str]] = []
    with log.open("rb") as stream:
        records = list(iter_records(stream, log.name, httperr=log.parent.name == "error",
                                    malformed=malformed))
    by_offset = {r.offset: r for r in records}
    lines = log.read_bytes().split(b"\n")
    by_text = {lines[r.line - 1].rstrip(b"\r").decode("utf-8", "replace"): r for r in records}
    checked = 0
    for event in events:
        if "log.offset" in event:
            record = by_offset.get(event["log.offset"])
        else:
            record = by_text.get(event["event.original"])
        if record is None:
            line_no = log.read_bytes()[: event.get("log.offset", 0)].count(b"\n") + 1
            assert (log.name, line_no) in DEVIATIONS, f"{log.name}: expected event not parsed: {event}"
            continue
        if (log.name, record.line) in DEVIATIONS:
            continue
        assert _compare(record, event) == [], f"{log.name}:{record.line}"
        checked += 1
    assert checked or all((log.name, n) in DEVIATIONS for _, n, _r in malformed)


@pytest.mark.parametrize("log", _corpus(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_log_analyses_without_error(log: Path) -> None:
    analyzer = LogAnalyzer(workers=1)
    if log.name in NOT_W3C:
        with pytest.raises(InputError, match="not a W3C"):
            analyzer.feed_path(log)
        return
    analyzer.feed_path(log)
    result = analyzer.result()
    data = log.read_bytes()
    assert result.lines_total == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    # Every line is accounted for: a request, an HTTPERR record, malformed, or a directive/blank line.
    assert result.requests + result.httperr_total + result.lines_malformed <= result.lines_total
    # The 401 counts agree with the simple reader.
    with log.open("rb") as stream:
        simple = [r for r in iter_records(stream, log.name) if r.kind == "w3c"]
    # (a 401 whose sc-win32-status does not fit in 32 bits is a malformed line to the analyzer)
    assert result.status_401_total == sum(1 for r in simple if r.get("sc-status") == b"401"
                                          and win32_fits(r.get("sc-win32-status") or b"-"))
    assert result.status_401_terminal + result.status_401_handshake == result.status_401_total


def test_beats_401_lines_are_terminal() -> None:
    """test-iis-7.2.log holds two anonymous `401 0 0` hits that never succeed: both are terminal."""
    analyzer = LogAnalyzer(workers=1)
    analyzer.feed_path(FIXTURES / "elastic-beats-iis" / "access" / "test-iis-7.2.log")
    result = analyzer.result()
    assert (result.status_401_total, result.status_401_terminal) == (2, 2)
    assert {(g.substatus, g.win32) for g in result.groups} == {(0, 0)}
