"""Regression tests for issue 13: each input that broke iisfleet when attacked as a compromised host would
attack it (tests/fixtures/hostile/, copied from ../shared/repro/hostile-input/) and each defence added."""

from __future__ import annotations

import re
import base64
import errno
import gzip
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from toolkit.collectors import Collector, ParamSpec, load_catalog
from toolkit.contract import DecodeBudget, decode_blob, iter_blob, validate_envelope
from toolkit.errors import ContractError, InputError
from toolkit.models import Credential, HostConfig, HostResult, ScriptOutput, StepError
from toolkit.report import build_report, render, write_reports
from toolkit.rundir import host_dir_name, host_from_dir_name, load_run, write_json_atomic
from toolkit.runner import run_playbook
from toolkit.secrets import Secret, contains_known_secret, redact
from toolkit.textsafe import display_text, has_unsafe

from fleet_helpers import ECHO_ID, MemoryTransport, StubPlaybook, StubStep, echo_collector, memory_host
from hostile_helpers import BLOB_ECHOES, ECHOES, HOSTILE_PASSWORD, files_holding

HOSTILE = Path(__file__).parents[1] / "fixtures" / "hostile"
CLI = [sys.executable, "-c", "import sys; from toolkit.cli import main; sys.exit(main())"]
CRASHES = HOSTILE / "crashes"

# --------------------------------------------------------------------------- a collector with a blob
BLOB_ID = "Test-Hostile"
BLOB_COLLECTOR = Collector(
    id=BLOB_ID, version=1, script=f"# collector-id: {BLOB_ID}/1\n",
    parameters=(ParamSpec("Since", "string", "", "window start", format="utc-time"),),
    sidecar={"name": BLOB_ID, "version": 1,
             "output": {"data": {"file": {"type": "blob"}, "note": {"type": "string"}}}},
)


def blob(data: bytes, encoding: str = "gzip+base64") -> dict[str, Any]:
    content = gzip.compress(data) if encoding == "gzip+base64" else data
    return {"encoding": encoding, "content": base64.b64encode(content).decode(), "bytes": len(data),
            "truncated": False}


def envelope(note: str = "", file: bytes = b"", *, host: str = "WEB01", time_utc: str = "2026-11-24T21:00:00Z",
             file_blob: dict[str, Any] | None = None) -> str:
    return json.dumps({"schema": "iisfleet.collector/1", "collector": BLOB_ID, "version": 1, "host": host,
                       "time_utc": time_utc, "errors": [],
                       "data": {"note": note, "file": file_blob or blob(file)}})


class ScriptedTransport:
    """Answers from ``host.vars["answer"](parameters)`` (a test's hostile host); records parameters."""

    seen: dict[str, list[dict[str, Any]]] = {}

    def __init__(self, host: HostConfig) -> None:
        self.host = host

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float) -> ScriptOutput:
        ScriptedTransport.seen.setdefault(self.host.name, []).append(dict(parameters))
        delay = float(self.host.vars.get("delay", 0))
        if delay:
            time.sleep(min(delay, timeout))
            if delay > timeout:
                from toolkit.errors import TransportError
                raise TransportError("too slow", host=self.host.name, category="timeout")
        answer = self.host.vars["answer"]
        return answer(parameters) if callable(answer) else answer


def hostile_host(name: str, answer: Any, password: str | None = None, **vars: Any) -> HostConfig:
    credential = Credential(name="ops", username="svc", password=Secret(password)) if password else None
    return HostConfig(name=name, address=f"{name}.lab.invalid", credential=credential,
                      vars={"answer": answer, **vars})


def run_one(tmp_path: Path, hosts: list[HostConfig], steps: int = 1, **kwargs: Any):
    playbook = StubPlaybook("t", [StubStep(BLOB_ID) for _ in range(steps)])
    return run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, catalog={BLOB_ID: BLOB_COLLECTOR},
                        transport_factory=ScriptedTransport, **kwargs)


# --------------------------------------------------------------------------- 1. secrets in any encoding
@pytest.mark.parametrize("how", sorted(ECHOES))
def test_an_echoed_secret_in_any_text_encoding_is_refused_before_anything_is_written(tmp_path: Path, how: str) -> None:
    note = ECHOES[how](HOSTILE_PASSWORD)
    host = hostile_host("web01", ScriptOutput(stdout=envelope(note=note, file=b"clean")), HOSTILE_PASSWORD)
    summary = run_one(tmp_path, [host])
    step = summary.hosts[0].steps[0]
    assert step.status == "failed" and step.error.category == "contract"
    assert "credential" in step.error.message
    assert load_run(tmp_path / "run").hosts["web01"].envelopes == {}
    assert files_holding(tmp_path / "run", HOSTILE_PASSWORD) == []


@pytest.mark.parametrize("how", sorted(BLOB_ECHOES))
@pytest.mark.parametrize("encoding", ["gzip+base64", "base64"])
def test_an_echoed_secret_inside_a_blob_is_refused(tmp_path: Path, how: str, encoding: str) -> None:
    data = BLOB_ECHOES[how](HOSTILE_PASSWORD)
    host = hostile_host("web01", ScriptOutput(stdout=envelope(file_blob=blob(data, encoding))), HOSTILE_PASSWORD)
    summary = run_one(tmp_path, [host])
    assert summary.hosts[0].steps[0].error.category == "contract"
    assert files_holding(tmp_path / "run", HOSTILE_PASSWORD) == []


def test_an_echoed_secret_in_host_error_text_is_withheld(tmp_path: Path) -> None:
    """The host's error stream is stored as the step's message: an encoded secret there is withheld whole."""
    leak = ECHOES["xml-entities"](HOSTILE_PASSWORD)
    host = hostile_host("web01", ScriptOutput(stdout="", errors=(f"Access denied {leak}",), had_errors=True),
                        HOSTILE_PASSWORD)
    summary = run_one(tmp_path, [host])
    assert summary.hosts[0].steps[0].error.category == "script"
    assert files_holding(tmp_path / "run", HOSTILE_PASSWORD) == []


def test_clean_output_with_lookalike_text_is_stored(tmp_path: Path) -> None:
    """The secret check does not refuse honest output (no false positive on escapes of other text)."""
    note = ECHOES["xml-entities"]("another value entirely") + ECHOES["base64-1"]("not the password")
    host = hostile_host("web01", ScriptOutput(stdout=envelope(note=note, file=b"<a b='&amp;'/>")), HOSTILE_PASSWORD)
    summary = run_one(tmp_path, [host])
    assert summary.hosts[0].status == "ok"
    assert list(load_run(tmp_path / "run").hosts["web01"].envelopes) == [BLOB_ID]


def test_redact_masks_raw_values_and_withholds_encoded_ones() -> None:
    Secret(HOSTILE_PASSWORD)
    assert redact(f"pw={HOSTILE_PASSWORD}") == "pw=********"
    assert HOSTILE_PASSWORD not in redact(ECHOES["url-encoded"](HOSTILE_PASSWORD))
    assert contains_known_secret(BLOB_ECHOES["utf16be"](HOSTILE_PASSWORD))
    assert redact("nothing secret here") == "nothing secret here"


# --------------------------------------------------------------------------- 2. bombs and the budget
def _bomb(size: int) -> dict[str, Any]:
    return blob(b"\0" * size)


def test_a_gzip_bomb_is_refused_while_inflating_with_bounded_memory() -> None:
    bomb = _bomb(250 * 1024 * 1024)  # the repro: ~250 KB of gzip that inflates to 250 MB
    tracemalloc.start()
    try:
        with pytest.raises(ContractError, match="inflates more than"):
            for _piece in iter_blob(bomb):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"inflating a bomb peaked at {peak:,} bytes"


def test_a_bomb_envelope_fails_its_step_and_is_not_stored(tmp_path: Path) -> None:
    bomb = ScriptOutput(stdout=envelope(file_blob=_bomb(64 * 1024 * 1024)))
    healthy = ScriptOutput(stdout=envelope(note="fine", file=b"x" * 1000))
    summary = run_one(tmp_path, [hostile_host("bomb", bomb, "pw-1234"), hostile_host("web01", healthy)])
    by_name = {h.host: h for h in summary.hosts}
    assert by_name["bomb"].steps[0].error.category == "contract"
    assert "bomb" in by_name["bomb"].steps[0].error.message
    assert by_name["web01"].status == "ok"
    assert load_run(tmp_path / "run").hosts["bomb"].envelopes == {}


def test_honest_compressible_data_still_decodes() -> None:
    text = b"2026-11-24 10:00:00 W3SVC1 GET /index.html - 443 - 10.0.0.1 Mozilla/5.0 - 200 0 0 15\r\n" * 40000
    assert decode_blob(blob(text)) == text  # ~3.4 MB of near-identical lines, well under the ratio floor


def test_the_decode_budget_makes_hosts_take_turns() -> None:
    budget = DecodeBudget(100)
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.wait()
        with budget.reserve(80):
            order.append("second")

    worker = threading.Thread(target=second)
    worker.start()
    with budget.reserve(60):
        entered.set()
        time.sleep(0.2)
        order.append("first")  # the second reservation (80 > 100 - 60) waits for this one
    worker.join(5)
    assert order == ["first", "second"] and budget.peak == 80 and budget.in_use == 0


def test_nested_reservations_never_block_each_other_for_good() -> None:
    """An envelope's reservation holds while its facts reserve a blob: two hosts doing that at once must
    both finish (the one waiting does not count what it already holds)."""
    budget = DecodeBudget(100)
    both_hold = threading.Barrier(2)
    done: list[str] = []

    def host(name: str) -> None:
        with budget.reserve(50):
            both_hold.wait(5)
            with budget.reserve(40):
                time.sleep(0.05)
                done.append(name)

    workers = [threading.Thread(target=host, args=(name,)) for name in ("web01", "web02")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert sorted(done) == ["web01", "web02"] and budget.in_use == 0 and budget.peak <= 100


def test_huge_plain_strings_count_against_the_decode_budget(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No blob at all, only a long string: the envelope still counts (its text and parsed copy) and hosts
    answering with such envelopes take turns instead of all being decoded at once."""
    import toolkit.contract as contract

    note = "A" * (8 * 1024 * 1024)
    answer = ScriptOutput(stdout=envelope(note=note, file=b"x"))
    cost = contract.envelope_cost(answer.stdout)
    budget = DecodeBudget(cost + cost // 2)  # room for one such envelope at a time, not two
    monkeypatch.setattr(contract, "DECODE_BUDGET", budget)
    summary = run_one(tmp_path, [hostile_host(f"web0{i}", answer) for i in range(1, 4)])
    assert [h.steps[0].status for h in summary.hosts] == ["ok", "ok", "ok"]
    assert cost <= budget.peak <= budget.total and budget.in_use == 0
    stored = json.loads((tmp_path / "run" / "hosts" / "web01" / f"{BLOB_ID}.json").read_text())
    assert stored["data"]["note"] == note


# --------------------------------------------------------------------------- 3. the BOM-only file
@pytest.mark.parametrize("native", ["1", "0"], ids=["compiled-scanner", "python-engine"])
def test_a_log_holding_only_a_bom_ends_promptly(native: str) -> None:
    env = {**os.environ, "IISFLEET_NO_NATIVE": "0" if native == "1" else "1"}
    result = subprocess.run(CLI + ["analyze", str(HOSTILE / "bom")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    assert "no usable log lines" in result.stderr


@pytest.mark.parametrize("native", [True, False], ids=["compiled-scanner", "python-engine"])
def test_the_analyzer_reads_a_bom_only_file_in_process(native: bool) -> None:
    from toolkit.logs import LogAnalyzer

    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(_analyze(LogAnalyzer, native)), daemon=True)
    worker.start()
    worker.join(30)
    assert done, "the analyzer did not finish on a BOM-only file"
    assert done[0].requests == 0


def _analyze(analyzer_class: Any, native: bool) -> Any:
    analyzer = analyzer_class(native=native)
    analyzer.feed_path(HOSTILE / "bom")
    return analyzer.result()


# --------------------------------------------------------------------------- 4. terminal escapes
HOSTILE_TEXT = "evil\x1b]0;owned\x07\x1b[2J\x9b31m\u202eexe.txt\u2066x\u2069\x00\r\nfake line\ud800"


def test_display_text_neutralises_every_terminal_control() -> None:
    shown = display_text(HOSTILE_TEXT)
    assert not has_unsafe(shown) and "\n" not in shown and "\r" not in shown
    for visible in ("\\x1b", "\\x9b", "\\u202e", "\\u2066", "\\x00", "\\ud800"):
        assert visible in shown
    assert display_text("web01 ok") == "web01 ok"


def _hostile_report() -> dict[str, Any]:
    run = {"playbook": "triage-401", "status": "complete", "hosts": [HOSTILE_TEXT, "web02"]}
    diagnosis = {"hosts": [{"name": HOSTILE_TEXT, "status": "failed",
                            "error": {"category": "script", "message": HOSTILE_TEXT, "explanation": HOSTILE_TEXT}}],
                 "findings": [{"cause": "x", "title": HOSTILE_TEXT, "hosts": [HOSTILE_TEXT], "severity": "high",
                               "evidence": [{"kind": "log", "host": HOSTILE_TEXT, "summary": HOSTILE_TEXT,
                                             "source": {"file": HOSTILE_TEXT, "line": 3}}],
                               "confidence": {"level": "high", "reason": HOSTILE_TEXT},
                               "fix": {"command": HOSTILE_TEXT}, "site": HOSTILE_TEXT, "scope": HOSTILE_TEXT}],
                 "clock_outliers": [{"host": HOSTILE_TEXT, "offset_s": -34560000.0, "reference": "collection time"}]}
    return build_report(run, diagnosis)


@pytest.mark.parametrize("fmt", ["text", "md", "csv"])
def test_text_reports_carry_no_terminal_control(fmt: str) -> None:
    out = render(_hostile_report(), fmt)
    assert not has_unsafe(out.replace("\n", "")), [c for c in out if has_unsafe(c)]
    assert "\\x1b" in out


def test_cli_host_lines_and_tables_carry_no_terminal_control() -> None:
    from toolkit.cli.run import _host_line, summary_table

    result = HostResult(host=HOSTILE_TEXT, address="a", transport="winrm", status="failed",
                        error=StepError(category="script", message=HOSTILE_TEXT, explanation=HOSTILE_TEXT))
    buffer = io.StringIO()
    Console(file=buffer, width=200, force_terminal=False).print(summary_table([result]))
    for out in (_host_line(result), buffer.getvalue()):
        assert not has_unsafe(out.replace("\n", "")), repr(out)


def test_cli_errors_carry_no_terminal_control(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from toolkit.cli._common import fail

    with pytest.raises(typer.Exit):
        fail(InputError(HOSTILE_TEXT, path="x", explanation=HOSTILE_TEXT))
    err = capsys.readouterr().err
    assert not has_unsafe(err.replace("\n", "")), repr(err)


# --------------------------------------------------------------------------- 5. lone surrogates
def test_a_lone_surrogate_envelope_validates_and_is_stored(tmp_path: Path) -> None:
    """The repro: validated, then UnicodeEncodeError on write, the host's data lost."""
    col = load_catalog()["Get-IisSpn"]
    env = {"schema": "iisfleet.collector/1", "collector": "Get-IisSpn", "version": col.version, "host": "WEB01",
           "time_utc": "2026-12-04T10:00:00Z", "data": {"machine_account": "WEB01$\ud800", "queries": []},
           "errors": []}
    checked = validate_envelope(json.dumps(env), collector=col, host="web01")
    write_json_atomic(tmp_path / "x.json", checked, compact=True)
    stored = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    assert stored["data"]["machine_account"] == "WEB01$\ufffd"


def test_the_fuzzer_surrogate_input_is_stored_through_the_runner(tmp_path: Path) -> None:
    raw = (CRASHES / "UnicodeEncodeError-f458075c9346.bin").read_bytes()
    note = raw.decode("utf-16-le", "surrogatepass") if len(raw) % 2 == 0 else raw[:-1].decode("utf-16-le", "surrogatepass")
    host = hostile_host("web01", ScriptOutput(stdout=envelope(note=note + "\ud800", file=b"x")))
    summary = run_one(tmp_path, [host])
    assert summary.hosts[0].status == "ok"
    stored = load_run(tmp_path / "run").hosts["web01"].envelopes[BLOB_ID]
    assert stored["data"]["note"].endswith("\ufffd")


# --------------------------------------------------------------------------- 6. host folder names
@pytest.mark.parametrize("name", ["web:01", "web_01", "web01", "..", ".hidden", "a/b\\c", "Ωmega", "_", "x_5f"])
def test_host_folder_names_are_safe_and_reversible(name: str) -> None:
    folder = host_dir_name(name)
    assert "/" not in folder and "\\" not in folder and not folder.startswith(".")
    assert host_from_dir_name(folder) == name


def test_hosts_whose_names_differ_only_in_path_characters_never_share_a_folder(tmp_path: Path) -> None:
    hosts = [memory_host("web:01", note=1), memory_host("web_01"), memory_host("web/01")]
    playbook = StubPlaybook("t", [StubStep(ECHO_ID, {"Message": "$msg"})], defaults={"msg": "hi"})
    run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, catalog={ECHO_ID: echo_collector()},
                 transport_factory=MemoryTransport)
    assert len(list((tmp_path / "run" / "hosts").iterdir())) == 3
    run = load_run(tmp_path / "run")
    assert set(run.hosts) == {"web:01", "web_01", "web/01"}
    for name in ("web:01", "web_01", "web/01"):
        assert run.hosts[name].envelopes[ECHO_ID]["host"] == name.upper()  # each host's own envelope


# --------------------------------------------------------------------------- 7. a full disk
def _fill_run(tmp_path: Path, out: Path, hosts: int = 8):
    big = "y" * 120_000
    host_list = [hostile_host(f"web{i:02d}", ScriptOutput(stdout=envelope(note=big, file=b"z"))) for i in range(hosts)]
    return run_playbook(StubPlaybook("t", [StubStep(BLOB_ID)]), host_list, out_dir=out, params={}, concurrency=1,
                        catalog={BLOB_ID: BLOB_COLLECTOR}, transport_factory=ScriptedTransport)


def _assert_disk_full_run_is_readable(out: Path, summary: Any) -> None:
    assert summary.status == "storage-error"
    assert summary.storage_error is not None and summary.storage_error.category == "storage"
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "storage-error" and meta["finished_utc"]
    assert meta["error"]["category"] == "storage"
    run = load_run(out)
    collected = [name for name, record in run.hosts.items() if record.envelopes]
    assert collected, "hosts collected before the disk filled must stay in the run directory"
    assert any(record.status == "skipped" for record in run.hosts.values())
    for name in collected:
        assert run.hosts[name].envelopes[BLOB_ID]["data"]["note"].startswith("yyy")


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the fault-injected test covers ENOSPC")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the fault-injected test covers ENOSPC")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_the_run_cleanly_on_a_real_small_filesystem(tmp_path: Path, small_tmpfs: Path) -> None:
    out = small_tmpfs / "run"
    summary = _fill_run(tmp_path, out)
    _assert_disk_full_run_is_readable(out, summary)


def test_a_full_disk_ends_the_run_cleanly_with_faults_injected_at_the_os(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:  # the kernel's answer once the disk is full: every later write fails
        calls["n"] += 1
        if 6 <= calls["n"] < 10_000 and not getattr(fsync, "freed", False):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:  # giving back the reserve frees space
        if str(path).endswith(".reserve"):
            fsync.freed = True  # type: ignore[attr-defined]
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    out = tmp_path / "run"
    summary = _fill_run(tmp_path, out)
    _assert_disk_full_run_is_readable(out, summary)


# --------------------------------------------------------------------------- 8. a host clock far off
def test_the_window_follows_a_host_clock_that_is_400_days_slow(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    host_now = datetime.now(timezone.utc) - timedelta(days=400)
    answer = ScriptOutput(stdout=envelope(note="ok", file=b"x", time_utc=host_now.strftime("%Y-%m-%dT%H:%M:%SZ")))
    since = (datetime.now(timezone.utc) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    playbook = StubPlaybook("t", [StubStep(BLOB_ID, {"Since": since}), StubStep(BLOB_ID, {"Since": since})])
    ScriptedTransport.seen.pop("slowclock", None)
    summary = run_playbook(playbook, [hostile_host("slowclock", answer)], out_dir=tmp_path / "run", params={},
                           catalog={BLOB_ID: BLOB_COLLECTOR}, transport_factory=ScriptedTransport)
    first, second = ScriptedTransport.seen["slowclock"]
    assert first["Since"] == since  # nothing known about the host's clock yet
    moved = datetime.fromisoformat(second["Since"].replace("Z", "+00:00"))
    assert abs((moved - (datetime.fromisoformat(since.replace("Z", "+00:00")) - timedelta(days=400)))
               .total_seconds()) < 120
    offset = summary.hosts[0].clock_offset_s
    assert offset is not None and abs(offset + 400 * 86400) < 120
    host_json = json.loads((tmp_path / "run" / "hosts" / "slowclock" / "host.json").read_text())
    assert host_json["clock_offset_s"] == offset


def test_a_host_clock_in_step_does_not_move_the_window(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = ScriptOutput(stdout=envelope(note="ok", file=b"x", time_utc=now))
    playbook = StubPlaybook("t", [StubStep(BLOB_ID, {"Since": "2026-01-01T00:00:00Z"})] * 2)
    ScriptedTransport.seen.pop("goodclock", None)
    summary = run_playbook(playbook, [hostile_host("goodclock", answer)], out_dir=tmp_path / "run", params={},
                           catalog={BLOB_ID: BLOB_COLLECTOR}, transport_factory=ScriptedTransport)
    assert [p["Since"] for p in ScriptedTransport.seen["goodclock"]] == ["2026-01-01T00:00:00Z"] * 2
    assert summary.hosts[0].clock_offset_s is None


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_the_report_says_a_host_window_followed_its_own_clock(fmt: str) -> None:
    out = render(_hostile_report(), fmt)
    assert "-34560000 s" in out and "followed its own clock" in out


# --------------------------------------------------------------------------- 9. hosts never started
def test_never_started_hosts_are_counted_as_skipped_after_a_kill(tmp_path: Path) -> None:
    hosts = [memory_host(f"web{i:02d}") for i in range(5)]
    playbook = StubPlaybook("t", [StubStep(ECHO_ID)])
    run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, catalog={ECHO_ID: echo_collector()},
                 transport_factory=MemoryTransport)
    # What SIGKILL leaves: run.json still "running", the last hosts never got a folder.
    meta_path = tmp_path / "run" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta.update(status="running", finished_utc=None)
    meta_path.write_text(json.dumps(meta))
    for name in ("web03", "web04"):
        for path in sorted((tmp_path / "run" / "hosts" / name).rglob("*"), reverse=True):
            path.unlink()
        (tmp_path / "run" / "hosts" / name).rmdir()
    written = write_reports(tmp_path / "run")
    text = written["text"].read_text()
    markdown = written["md"].read_text()
    assert "2 skipped" in text  # the hosts table lists both as skipped
    assert re.search(r"web03 .* skipped", text) and re.search(r"web04 .* skipped", text)
    assert "| 5 | " in markdown and "| skipped |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 5 |"))
    assert row.split("|")[5].strip() == "2"


# --------------------------------------------------------------------------- 10. per-step budgets
def test_one_slow_step_cannot_starve_the_cheap_steps_after_it(tmp_path: Path) -> None:
    answer = ScriptOutput(stdout=envelope(note="ok", file=b"x"))
    slow = hostile_host("web01", answer, delay=30)
    fast_after = hostile_host("web02", answer)
    playbook = StubPlaybook("t", [StubStep(BLOB_ID, timeout=60), StubStep(BLOB_ID, timeout=60),
                                  StubStep(BLOB_ID, timeout=60)])

    class OnlyFirstSlow(ScriptedTransport):
        calls = 0

        def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float) -> ScriptOutput:
            OnlyFirstSlow.calls += 1
            if self.host.name == "web01" and OnlyFirstSlow.calls > 1:
                return answer
            return super().run_script(script, parameters, timeout=timeout)

    from dataclasses import replace
    hosts = [replace(slow, time_budget=3.0)]
    started = time.monotonic()
    summary = run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, catalog={BLOB_ID: BLOB_COLLECTOR},
                           transport_factory=OnlyFirstSlow)
    steps = summary.hosts[0].steps
    assert steps[0].error is not None and steps[0].error.category == "timeout"
    assert steps[0].duration_s < 2.6  # it kept a share of the 3 s budget for the two steps after it
    assert [s.status for s in steps[1:]] == ["ok", "ok"]
    assert time.monotonic() - started < 10
    assert fast_after.name == "web02"


# --------------------------------------------------------------------------- 11. parsers and -v
def _parse_crash(path: Path) -> None:
    from toolkit.parsers.events import records_from_event_xml
    from toolkit.parsers.freb import parse_freb
    from toolkit.parsers.iisconfig import parse_iis_config
    from toolkit.parsers.sddl import parse_sddl

    data = path.read_bytes()
    if path.name.startswith("IndexError"):
        records_from_event_xml(data.decode("utf-8", "replace"), path.name)
    elif path.name == "LookupError-7090f6bbcb2a.bin":
        parse_freb(data, path.name)
    elif path.name.startswith("LookupError"):
        parse_iis_config(data, "applicationHost.config")
    elif path.name.startswith("ValueError"):
        parse_sddl(data.decode("utf-8", "replace"))
    else:
        raise AssertionError(path)


@pytest.mark.parametrize("name", sorted(p.name for p in CRASHES.glob("*.bin") if not p.name.startswith("Unicode")))
def test_fuzzer_crash_inputs_raise_only_input_error(name: str) -> None:
    with pytest.raises(InputError):
        _parse_crash(CRASHES / name)


@pytest.mark.parametrize("call", [
    "freb-utf6", "apphost-utf9", "event-decl", "sddl-hex", "sddl-superscript",
])
def test_the_parser_repro_cases_raise_input_error(call: str) -> None:
    from toolkit.parsers.events import records_from_event_xml
    from toolkit.parsers.freb import parse_freb
    from toolkit.parsers.iisconfig import parse_iis_config
    from toolkit.parsers.sddl import parse_sddl

    cases = {
        "freb-utf6": lambda: parse_freb(b'<?xml version="1.0" encoding="UTF-6"?><failedRequest/>', "fr1.xml"),
        "apphost-utf9": lambda: parse_iis_config(b'<?xml version="1.0" encoding="UTF-9"?><configuration/>',
                                                 "applicationHost.config"),
        "event-decl": lambda: records_from_event_xml('<?xml version="1.0"', "e.xml"),
        "sddl-hex": lambda: parse_sddl("D:(A;;0xZZ;;;WD)"),
        "sddl-superscript": lambda: parse_sddl("D:(A;;\u00b2;;;WD)"),
    }
    with pytest.raises(InputError) as caught:
        cases[call]()
    assert caught.value.category == "input"


def test_verbose_logging_carries_the_traceback_of_an_unexpected_step_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken(parameters: dict[str, Any]) -> ScriptOutput:
        raise LookupError("a bug inside iisfleet")

    caplog.set_level(logging.DEBUG, logger="toolkit")
    summary = run_one(tmp_path, [hostile_host("web01", broken)])
    error = summary.hosts[0].steps[0].error
    assert error.category == "protocol" and "--verbose" in (error.explanation or "")
    traced = [r for r in caplog.records if r.exc_info and "unexpected error" in r.getMessage()]
    assert traced and traced[0].exc_info[0] is LookupError


# --------------------------------------------------------------------------- the curious colleague
def test_the_run_directory_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    hosts = [memory_host("web01")]
    run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)], report=False), hosts, out_dir=tmp_path / "run", params={},
                 catalog={ECHO_ID: echo_collector()}, transport_factory=MemoryTransport)
    root = tmp_path / "run"
    assert root.stat().st_mode & 0o777 == 0o700
    for path in root.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path
