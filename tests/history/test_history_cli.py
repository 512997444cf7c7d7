"""`iisfleet runs list|index`, `diff` and `trend` over run directories described in fixtures/daily-sweeps.yml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from seeded_runs import write_runs
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.history import HistoryStore


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and standard output (standard error is in ``_cli_errors``)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def _cli_errors(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, list[Path]]:
    runs = write_runs(tmp_path / "runs")
    db = tmp_path / "runs" / "history.sqlite"
    code, out = _cli("runs", "index", *map(str, runs))  # the default: beside the runs
    assert code == 0, out
    assert db.is_file()
    return db, runs


def _names(db: Path, *filters: str) -> list[str]:
    code, out = _cli("runs", "list", "--history", str(db), "--json", *filters)
    assert code == 0, out
    return [row["name"] for row in json.loads(out)]


def test_list_filters(indexed) -> None:
    db, runs = indexed
    names = [r.name for r in runs]
    assert _names(db) == names[::-1]  # newest first
    assert _names(db, "--playbook", "triage-401") == [names[3], names[1], names[0]]
    assert _names(db, "--host", "web04") == [names[2]]
    assert _names(db, "--cause", "kerberos-spn-missing") == [names[3]]
    assert _names(db, "--since", "2026-12-02") == [names[3], names[2], names[1]]
    assert _names(db, "--until", "2026-12-02T06:00:00Z") == [names[1], names[0]]
    assert _names(db, "--since", "1d") == []  # the fixture runs are older than a day
    code, err = _cli_errors("runs", "list", "--history", str(db), "--since", "yesterday-ish")
    assert code == 2 and "--since" in err


def test_reindex_keeps_the_id_and_replaces_rows(indexed) -> None:
    db, runs = indexed
    with HistoryStore(db) as store:
        first = store.run_id_for_path(runs[0])
        assert store.pragma("journal_mode") == "wal"
    code, _ = _cli("runs", "index", "--history", str(db), str(runs[0]), str(runs[0]))
    assert code == 0
    with HistoryStore(db) as store:
        assert store.run_id_for_path(runs[0]) == first
        assert len(store.list_runs()) == len(runs)
        assert [f.host for f in store.load(first).findings] == ["web01"]


def test_index_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out = _cli("runs", "index", "--history", str(tmp_path / "h.sqlite"), str(tmp_path / "empty"))
    assert code == 2 and "not a run directory" in " ".join(out.split())


def test_diff_latest_against_previous(indexed) -> None:
    db, _ = indexed
    code, out = _cli("diff", "previous", "latest", "--playbook", "triage-401", "--history", str(db), "-f", "json")
    diff = json.loads(out)
    assert [(f["host"], f["cause"]) for f in diff["findings"]["new"]] == [("web03", "kerberos-spn-missing")]
    assert [(f["host"], f["cause"]) for f in diff["findings"]["resolved"]] == [("web01", "logon-right-denied")]
    assert [(f["host"], f["changed"], f["before"]["terminal_401"], f["terminal_401"])
            for f in diff["findings"]["changed"]] == [("web02", ["terminal_401"], 45, 300)]
    assert [(h["host"], h["before"], h["after"]) for h in diff["hosts"]["status_changed"]] == [("web03", "failed", "ok")]
    assert [(d["host"], d["attribute"]) for d in diff["drift"]["started"]] == [("web03", "windows.use_kernel_mode")]
    assert code == 1  # a new medium finding, --fail-on low by default
    assert _cli("diff", "previous", "latest", "--playbook", "triage-401", "--history", str(db),
                "--fail-on", "high")[0] == 0


def test_diff_never_calls_an_unchecked_host_resolved(indexed) -> None:
    db, runs = indexed
    # web03 failed in the second run; give it a finding in the first by diffing the third (healthy) backwards
    code, out = _cli("diff", "#4", "#2", "--history", str(db), "-f", "json")
    diff = json.loads(out)
    assert ("web03", "kerberos-spn-missing") in [(f["host"], f["cause"]) for f in diff["findings"]["unverified"]]
    assert "web03" not in [f["host"] for f in diff["findings"]["resolved"]]
    assert [d["host_status"] for d in diff["drift"]["stopped"]] == ["failed"]


def test_diff_formats(indexed, tmp_path: Path) -> None:
    db, runs = indexed
    for fmt, marker in (("text", "New findings (1):"), ("md", "## New findings (1)"), ("html", "<h2>New findings (1)</h2>")):
        code, out = _cli("diff", str(runs[1]), str(runs[3]), "--history", str(db), "-f", fmt)
        assert code == 1 and marker in out, out
    target = tmp_path / "mail" / "diff.html"
    code, _ = _cli("diff", str(runs[1]), str(runs[3]), "--history", str(db), "-f", "html", "-o", str(target))
    assert code == 1 and target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_diff_of_unknown_run_is_a_usage_error(indexed) -> None:
    db, _ = indexed
    code, err = _cli_errors("diff", "#99", "latest", "--history", str(db))
    assert code == 2 and "run #99 is not in the history database" in err


def test_trend_per_server(indexed) -> None:
    db, _ = indexed
    code, out = _cli("trend", "--cause", "logon-right-denied", "--playbook", "triage-401", "--history", str(db),
                     "--json")
    assert code == 0
    trend = json.loads(out)
    assert [r["started_utc"][:10] for r in trend["runs"]] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    states = {host: [(p["state"], p.get("terminal_401")) for p in series] for host, series in trend["hosts"].items()}
    assert states == {"web01": [("found", 40), ("found", 45), ("clear", None)],
                      "web02": [("clear", None), ("found", 45), ("found", 300)]}
    code, out = _cli("trend", "--cause", "logon-right-denied", "--playbook", "triage-401", "--history", str(db))
    assert code == 0 and "web01" in out and "● 300" in out


def test_a_damaged_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    code, err = _cli_errors("runs", "list", "--history", str(db))
    assert code == 2 and "cannot use the run-history database" in err


def test_hostile_names_are_escaped_in_html_and_markdown() -> None:
    from toolkit.history.diff import diff_runs, render_html, render_markdown
    from toolkit.history.record import FindingRow, HostRow, RunRecord

    evil = "<img src=x onerror=alert(1)>|`x`"
    before = RunRecord(path="/a", name="a", playbook="p", status="complete", started_utc="1", finished_utc="1",
                       hosts=[HostRow(host=evil, status="ok")])
    after = RunRecord(path="/b", name="b", playbook="p", status="complete", started_utc="2", finished_utc="2",
                      hosts=[HostRow(host=evil, status="ok")],
                      findings=[FindingRow(host=evil, cause="ip-restriction", site="S\x1b[31m", scope="/",
                                           substatus="401.503", severity="medium")])
    diff = diff_runs(before, after)
    assert "<img" not in render_html(diff) and "&lt;img" in render_html(diff)
    markdown = render_markdown(diff)
    assert "<img" not in markdown and "&lt;img" in markdown and "\x1b" not in markdown


def test_run_records_itself_beside_the_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab_runs import served_lab

    monkeypatch.delenv("IISFLEET_HISTORY", raising=False)
    with served_lab(tmp_path, scenario="healthy", hosts=2) as inventory:
        code, out = _cli("run", "health-sweep", "-i", str(inventory), "--out", str(tmp_path / "runs" / "one"))
        assert code == 0, out
        monkeypatch.setenv("IISFLEET_HISTORY", "off")
        code, out = _cli("run", "health-sweep", "-i", str(inventory), "--out", str(tmp_path / "runs" / "two"))
        assert code == 0, out
    assert _names(tmp_path / "runs" / "history.sqlite") == ["one"]
