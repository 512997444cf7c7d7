"""Fuzz targets: one function per input surface a compromised host controls, each taking raw bytes.

A target returns normally or raises the documented error of what it calls (``InputError`` for the
parsers, ``ToolkitError`` for envelopes); anything else escapes and is a finding. Invariants checked on
the way: the compiled W3C scanner and the pure-Python engine agree on every input; every text report
is free of terminal controls; ``display_text`` output is always safe.

Used by ``fuzz.py`` (atheris, coverage-guided) and by ``test_fuzz.py`` (corpus replay in the default suite).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from toolkit.errors import InputError, ToolkitError

_TMP = Path(os.environ.get("IISFLEET_FUZZ_TMP") or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()))


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape").encode("utf-8", "surrogatepass").decode("utf-8", "replace") \
        if data else ""


# ----------------------------------------------------------------------------- W3C engine
_W3C_HEADER = b"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"


def _analyse(folder: Path, native: bool) -> dict:
    from toolkit.logs import LogAnalyzer

    analyzer = LogAnalyzer(native=native, window_s=30)
    try:
        analyzer.feed_path(folder)
        return analyzer.result().to_dict()
    except InputError as exc:
        return {"error": str(exc)}


def _without_lines(data: bytes, numbers: set[int]) -> bytes:
    lines = data.split(b"\n")
    return b"\n".join(line for index, line in enumerate(lines, 1) if index not in numbers)


def w3c_differential(data: bytes) -> None:
    """The same log bytes through the compiled scanner and the pure-Python engine: equal analyses.

    One documented difference is accepted (docs/analyze.md): the Python engine's block-wise field-count
    proof misses malformed lines whose extra and missing fields cancel out. When the engines disagree,
    the lines the compiled scanner flagged for their field count are removed; then they must agree.
    """
    from toolkit.logs.engine import native_available

    if not native_available():
        _analyse_bytes(data, False)
        return
    compiled, python = _analyse_bytes(data, True), _analyse_bytes(data, False)
    first = (compiled, python)
    # Removing the lines one proof block missed can make two other malformed lines of that block cancel
    # out in turn, so the removal is repeated while it finds such lines (each round removes at least one).
    for _round in range(50):
        if compiled == python:
            return
        flagged = {m["line"] for m in compiled.get("malformed", []) if "fields where #Fields lists" in m["reason"]}
        missed = flagged - {m["line"] for m in python.get("malformed", [])}
        if not missed or len(compiled.get("malformed", [])) >= 200:  # past the cap the list is incomplete
            break
        data = _without_lines(data, missed)
        compiled, python = _analyse_bytes(data, True), _analyse_bytes(data, False)
    raise AssertionError(f"compiled and Python engines disagree: {first[0]} != {first[1]}")


def _analyse_bytes(data: bytes, native: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="iisfleet-fuzz-", dir=_TMP))
    path = folder / "W3SVC1" / "u_ex261124.log"
    try:
        path.parent.mkdir()
        path.write_bytes(data)
        result = _analyse(folder, native)
        result.pop("sources", None)
        for item in result.get("malformed", []) + [s for r in result.get("rows", []) for s in r.get("samples", [])]:
            item.pop("source", None)
        return result
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
        folder.rmdir()


def w3c_excerpt(data: bytes) -> None:
    """A collector excerpt (``<n><TAB><line>``) as facts and the analyzer read it."""
    from toolkit.facts import _count_401_lines
    from toolkit.logs import LogAnalyzer, parse_excerpt

    _count_401_lines(data)
    try:
        lines = list(parse_excerpt(data))
    except InputError:
        return
    analyzer = LogAnalyzer(window_s=30)
    analyzer.feed_lines("C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log", lines)
    analyzer.result()


# ----------------------------------------------------------------------------- parsers
def freb(data: bytes) -> None:
    from toolkit.parsers.freb import parse_freb

    try:
        parse_freb(data, "fr000001.xml")
    except InputError:
        pass


def iisconfig(data: bytes) -> None:
    from toolkit.parsers.iisconfig import parse_iis_config

    try:
        parse_iis_config(data, "applicationHost.config")
    except InputError:
        pass


def events_xml(data: bytes) -> None:
    from toolkit.parsers.events import parse_logon_failures, records_from_event_xml

    try:
        records = records_from_event_xml(_text(data), "events.xml")
        parse_logon_failures(records)
    except InputError:
        pass


def sddl(data: bytes) -> None:
    from toolkit.parsers.sddl import effective_access, parse_sddl

    try:
        descriptor = parse_sddl(_text(data), "D:\\sites\\app")
        effective_access(descriptor, ["S-1-1-0", "S-1-5-11"])
    except InputError:
        pass


def secedit(data: bytes) -> None:
    from toolkit.parsers.secedit import parse_secedit

    try:
        parse_secedit(data, "secedit.inf")
    except InputError:
        pass


def setspn(data: bytes) -> None:
    from toolkit.parsers.setspn import parse_setspn_result

    try:
        parse_setspn_result(_text(data), "WEB01$")
    except InputError:
        pass


# ----------------------------------------------------------------------------- envelopes end to end
def envelope(data: bytes) -> None:
    """First byte picks the collector; the rest is its stdout. A valid envelope goes through facts,
    diagnosis and every report format, and no text report may carry a terminal control."""
    from toolkit.collectors import load_catalog
    from toolkit.contract import validate_envelope
    from toolkit.diagnose import diagnose_run
    from toolkit.facts import facts_from_envelope
    from toolkit.report import RENDERERS, build_report, render, run_hosts_of
    from toolkit.rundir import HostRecord, RunData
    from toolkit.textsafe import has_unsafe

    if not data:
        return
    catalog = _catalog(load_catalog)
    collector = catalog[sorted(catalog)[data[0] % len(catalog)]]
    try:
        checked = validate_envelope(_text(data[1:]), collector=collector, host="web01")
    except ToolkitError:
        return
    facts_from_envelope(collector.id, checked)
    record = HostRecord(name="web01", status="ok", address="127.0.0.1", transport="winrm",
                        envelopes={collector.id: checked})
    run = RunData(path=Path("."), meta={"playbook": "fuzz", "status": "complete", "hosts": ["web01"],
                                        "finished_utc": "2026-11-24T12:00:00Z"}, hosts={"web01": record})
    try:
        diagnosis = diagnose_run(run)
    except InputError:
        return
    model = build_report(run.meta, diagnosis.to_dict(), run_hosts_of(run))
    for fmt in RENDERERS:
        out = render(model, fmt)
        if fmt in ("text", "md", "csv") and has_unsafe(out.replace("\n", "")):
            raise AssertionError(f"the {fmt} report carries a terminal control")
    json.loads(render(model, "json"))


_CATALOG: dict = {}


def _catalog(load: Callable[[], dict]) -> dict:
    if not _CATALOG:
        _CATALOG.update(load())
    return _CATALOG


def textsafe(data: bytes) -> None:
    from toolkit.textsafe import display_text, has_unsafe, scrub_surrogates

    text = data.decode("utf-16-le", "surrogatepass") if len(data) % 2 == 0 else _text(data)
    shown = display_text(text)
    if has_unsafe(shown) or "\n" in shown:
        raise AssertionError(f"display_text left a control in {shown!r}")
    scrub_surrogates(text).encode("utf-8")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "w3c_differential": w3c_differential,
    "w3c_excerpt": w3c_excerpt,
    "freb": freb,
    "iisconfig": iisconfig,
    "events_xml": events_xml,
    "sddl": sddl,
    "secedit": secedit,
    "setspn": setspn,
    "envelope": envelope,
    "textsafe": textsafe,
}
