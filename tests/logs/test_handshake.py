"""Handshake vs terminal 401s on crafted sequences (docs/analyze.md gives the rule)."""

from __future__ import annotations

import pytest

OTHER_UA = "curl/8.4.0"


def _counts(result) -> tuple[int, int, int]:
    return result.status_401_total, result.status_401_handshake, result.status_401_terminal


@pytest.mark.parametrize("lines,expected", [
    # Kerberos/Negotiate: challenge, then success.
    ([("10:00:00", "401 2 5"), ("10:00:00", "200 0 0")], (2 - 1, 1, 0)),
    # NTLM: challenge, type-2 exchange, success.
    ([("10:00:00", "401 2 5"), ("10:00:00", "401 1 2148074254"), ("10:00:01", "200 0 0")], (2, 2, 0)),
    # Logon denied: nothing succeeds afterwards.
    ([("10:00:00", "401 2 5"), ("10:00:00", "401 1 2148074252")], (2, 0, 2)),
    # A client that never answers the challenge.
    ([("10:00:00", "401 2 5")], (1, 0, 1)),
    # The success comes 30 s later: still inside the (inclusive) window.
    ([("10:00:00", "401 2 5"), ("10:00:30", "304 0 0")], (1, 1, 0)),
    # 31 s later is too late.
    ([("10:00:00", "401 2 5"), ("10:00:31", "200 0 0")], (1, 0, 1)),
    # A later 404 is not a success.
    ([("10:00:00", "401 2 5"), ("10:00:01", "404 0 2")], (1, 0, 1)),
])
def test_sequences(write_log, header, row, analyse, lines, expected) -> None:
    text = header + "".join(row(clock, status) for clock, status in lines)
    assert _counts(analyse(write_log("W3SVC1/u_ex261124.log", text))) == expected


def test_success_must_be_same_uri_stem(write_log, header, row, analyse) -> None:
    text = header + row("10:00:00", "401 2 5", stem="/a") + row("10:00:00", "200 0 0", stem="/b")
    assert _counts(analyse(write_log("u_ex261124.log", text))) == (1, 0, 1)


def test_success_must_be_same_client_and_user_agent(write_log, header, row, analyse) -> None:
    text = (header + row("10:00:00", "401 2 5", ip="10.0.0.1") + row("10:00:00", "200 0 0", ip="10.0.0.2")
            + row("10:00:00", "401 2 5", ip="10.0.0.3")
            + row("10:00:00", "200 0 0", ip="10.0.0.3", ua=OTHER_UA))
    assert _counts(analyse(write_log("u_ex261124.log", text))) == (2, 0, 2)


def test_a_longer_address_does_not_resolve_a_shorter_one(write_log, header, row, analyse) -> None:
    text = header + row("10:00:00", "401 2 5", ip="10.0.0.1") + row("10:00:00", "200 0 0", ip="10.0.0.11")
    assert _counts(analyse(write_log("u_ex261124.log", text))) == (1, 0, 1)


def test_success_before_the_401_does_not_count(write_log, header, row, analyse) -> None:
    text = header + row("10:00:00", "200 0 0") + row("10:00:01", "401 2 5")
    assert _counts(analyse(write_log("u_ex261124.log", text))) == (1, 0, 1)


def test_window_is_configurable(write_log, header, row, analyse) -> None:
    path = write_log("u_ex261124.log", header + row("10:00:00", "401 2 5") + row("10:00:08", "200 0 0"))
    assert _counts(analyse(path, window_s=5)) == (1, 0, 1)
    assert _counts(analyse(path, window_s=10)) == (1, 1, 0)


def test_handshake_spans_an_hourly_rollover(write_log, header, row, analyse, tmp_path) -> None:
    write_log("logs/W3SVC1/u_ex26112410.log", header + row("10:59:59", "401 2 5"))
    write_log("logs/W3SVC1/u_ex26112411.log", header + row("11:00:01", "200 0 0"))
    assert _counts(analyse(tmp_path / "logs")) == (1, 1, 0)


def test_sites_do_not_resolve_each_other(write_log, header, row, analyse, tmp_path) -> None:
    write_log("logs/W3SVC1/u_ex261124.log", header + row("10:00:00", "401 2 5"))
    write_log("logs/W3SVC2/u_ex261124.log", header + row("10:00:01", "200 0 0"))
    result = analyse(tmp_path / "logs")
    assert _counts(result) == (1, 0, 1)
    assert result.requests_by_site == {"W3SVC1": 1, "W3SVC2": 1}


def test_handshake_across_a_fields_change(write_log, header, row, analyse) -> None:
    # Same 15 fields re-announced after a restart: the conversation continues.
    text = header + row("10:00:00", "401 2 5") + header + row("10:00:01", "200 0 0")
    assert _counts(analyse(write_log("u_ex261124.log", text))) == (1, 1, 0)


def test_terminal_samples_and_tops(write_log, header, row, analyse) -> None:
    text = header + "".join(row(f"10:00:0{i}", "401 1 1326", ip="10.9.9.9", user="CONTOSO\\bob", stem="/hr")
                            for i in range(7))
    result = analyse(write_log("W3SVC3/u_ex261124.log", text))
    (group,) = result.groups
    assert (group.site, group.substatus, group.win32_name) == ("W3SVC3", 1, "ERROR_LOGON_FAILURE")
    assert group.terminal == 7
    assert len(group.samples) == 5
    assert [s.line for s in group.samples] == [5, 6, 7, 8, 9]
    assert group.samples[0].time == "2026-11-24T10:00:00Z" and group.samples[0].user == "CONTOSO\\bob"
    assert result.top_uris == [("/hr", 7)] and result.top_clients == [("10.9.9.9", 7)]
    assert result.by_hour == {"2026-11-24T10": 7}


def test_many_open_401s_are_resolved_in_one_batch(write_log, header, row, analyse) -> None:
    # 300 clients get a challenge; every odd one succeeds 20 s later (beyond the short look-ahead).
    first = "".join(row("10:00:00", "401 2 5", ip=f"10.1.{i // 250}.{i % 250}") for i in range(300))
    filler = "".join(row("10:00:10", "200 0 0", ip="10.200.0.1", stem=f"/f{i}") for i in range(400))
    later = "".join(row("10:00:20", "200 0 0", ip=f"10.1.{i // 250}.{i % 250}") for i in range(1, 300, 2))
    result = analyse(write_log("u_ex261124.log", header + first + filler + later))
    assert _counts(result) == (300, 150, 150)


def test_log_without_times_resolves_within_the_file(write_log, analyse) -> None:
    text = ("#Fields: c-ip cs(User-Agent) cs-uri-stem sc-status sc-substatus sc-win32-status\n"
            "10.0.0.1 UA /a 401 2 5\n10.0.0.1 UA /a 200 0 0\n10.0.0.2 UA /a 401 2 5\n")
    result = analyse(write_log("u_ex261124.log", text))
    assert _counts(result) == (2, 1, 1)
    assert result.first_time is None


@pytest.mark.parametrize("between,expected", [
    ("10:00:35", (1, 1, 0)),  # the log is 35 s past the 401: inside the window plus its 5 s of tolerance
    ("10:00:36", (1, 0, 1)),  # 36 s: the log moved past the window, so the success after it comes too late
    ("14:10:00", (1, 0, 1)),
])
def test_a_success_after_the_log_moved_past_the_window_does_not_settle_it(
        write_log, header, row, analyse, between, expected) -> None:
    """docs/analyze.md: the window closes at the first line more than window + 5 s past the 401, even when a
    success with an earlier time follows. Found by the W3C differential fuzz run: the pure-Python engine used
    to close the window only at line times sampled every 16 KiB, so the line in between went unseen."""
    text = (header + row("10:00:00", "401 2 5") + row(between, "200 0 0", ip="10.0.0.77", stem="/other")
            + row("10:00:00", "200 0 0"))
    assert _counts(analyse(write_log("W3SVC1/u_ex261124.log", text))) == expected


def test_the_log_moved_past_the_window_between_a_challenge_and_its_second_leg(
        write_log, header, row, analyse) -> None:
    """The NTLM second leg settles the first 401 only while the log has not moved past it either."""
    text = (header + row("10:00:00", "401 2 5") + row("10:01:00", "200 0 0", ip="10.0.0.77")
            + row("10:00:01", "401 1 2148074254") + row("10:00:02", "200 0 0"))
    assert _counts(analyse(write_log("W3SVC1/u_ex261124.log", text))) == (2, 0, 2)


def test_lines_far_out_of_order_close_windows_where_they_stand(log_engine: str, analyse) -> None:
    """tests/fixtures/logs/admin-cases/out-of-order: which 401s the log moved past (see its README)."""
    from pathlib import Path

    folder = Path(__file__).parents[1] / "fixtures" / "logs" / "admin-cases" / "out-of-order"
    result = analyse(folder)
    assert _counts(result) == (6, 4, 2)
    terminal = sorted((s.line, s.c_ip) for g in result.groups for s in g.samples)
    assert terminal == [(8, "10.0.1.2"), (12, "10.0.1.4")]


def test_a_malformed_line_never_moves_the_log_past_a_window(write_log, header, row, analyse) -> None:
    """Malformed lines are never read (docs/analyze.md), their times included. Found by the W3C differential
    fuzz run: the line times sampled to bound a window's search were read from malformed lines, so a 401
    carried across a directive was closed by a cut-short line hours ahead."""
    text = (header + row("10:00:00", "401 2 5") + "#Date: 2026-11-24 10:00:00\n"
            + "2026-11-24 14:00:00 10.0.0.5 GET /- 200 0 0 127\n" + row("10:00:00", "401 2 5")
            + "#Date: 2026-11-24 10:00:00\n" + row("10:00:01", "200 0 0"))
    result = analyse(write_log("W3SVC1/u_ex261124.log", text))
    assert _counts(result) == (2, 2, 0) and result.lines_malformed == 1
