"""Helpers for driving the core's log collectors through the lab harness and comparing with toolkit/logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit.contract import decode_blob, merge_parts
from toolkit.lab.model.corehost import CoreHost, SimulatedHost
from toolkit.logs import LogAnalysis, LogAnalyzer

NOW = "2099-01-01T00:00:00Z"
EVERYTHING = {"Since": "1970-01-02T00:00:00Z", "Until": "2098-01-01T00:00:00Z"}


def collect(core_host: CoreHost, folder: Path, collector: str = "Get-IisW3CLog", now: str = NOW,
            **parameters: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a log collector on ``folder`` (mounted as D:\\logs); return (merged envelope, parts)."""
    host = SimulatedHost("WEB01", now, mounts=[("D:\\logs", str(folder))])
    directory: Any = ["D:\\logs"] if collector == "Get-IisW3CLog" else "D:\\logs"
    answer = core_host.run(collector, host, {"LogDirectory": directory, **EVERYTHING, **parameters})
    assert answer.error is None, answer.error
    parts = [json.loads(text) for text in answer.outputs]
    return merge_parts(parts), parts


def controller_analysis(envelope: dict[str, Any], window_s: float = 30.0) -> LogAnalysis:
    """What the controller concludes from the collected envelope (toolkit/diagnose does the same)."""
    analyzer = LogAnalyzer(window_s=window_s)
    for entry in envelope["data"]["files"]:
        analyzer.feed_collected(entry, decode_blob(entry["excerpt"]))
    return analyzer.result()


def reference_analysis(folder: Path, window_s: float = 30.0, **bounds: Any) -> LogAnalysis:
    analyzer = LogAnalyzer(window_s=window_s, **bounds)
    analyzer.feed_path(folder)
    return analyzer.result()


def counts(analysis: LogAnalysis) -> dict[str, Any]:
    """What must agree: the 401 totals and every group's counts (the report's rows)."""
    return {"status_401": (analysis.status_401_total, analysis.status_401_terminal, analysis.status_401_handshake),
            "groups": sorted((g.site, g.substatus, g.win32, g.count, g.terminal, g.handshake) for g in analysis.groups),
            "terminal_by_site": dict(analysis.terminal_by_server_site)}


def terminal_lines(analysis: LogAnalysis) -> list[tuple[str, int]]:
    return sorted((s.source.rsplit("/", 1)[-1].rsplit("\\", 1)[-1], s.line) for g in analysis.groups for s in g.samples)
