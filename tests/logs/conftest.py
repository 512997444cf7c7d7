"""Fixtures for the log engine tests: paths to the conformance corpus and small log writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "logs"
# The CI copies shared/ beside the clone; a developer checkout may not have it.
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"

HEADER = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
          "#Date: 2026-11-24 10:00:00\n"
          "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
          "cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n")
UA = "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)"


def row(clock: str, status: str, *, ip: str = "10.0.0.9", stem: str = "/app", user: str = "-", ua: str = UA,
        date: str = "2026-11-24") -> str:
    """One line in the default 15-field layout; ``status`` is "401 2 5" style."""
    return f"{date} {clock} 10.0.0.5 GET {stem} - 443 {user} {ip} {ua} - {status} 15\n"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every log test runs on both engines; the differential module compares the two itself.
    if "log_engine" in metafunc.fixturenames and not metafunc.module.__name__.endswith("native_matches_python"):
        metafunc.parametrize("log_engine", ["compiled", "python"], indirect=True)


@pytest.fixture(autouse=True)
def log_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which engine this test runs on: the compiled scanner (toolkit/logs/_scan.c) or the pure-Python one
    that replaces it when no C compiler was there at install time."""
    from toolkit.logs import engine as engine_module

    which = getattr(request, "param", "compiled")
    if which == "python":
        monkeypatch.setattr(engine_module, "_native", None)
    elif not engine_module.native_available():
        pytest.skip("the compiled scanner is not built (the python variant of this test runs instead)")
    return which


@pytest.fixture
def header() -> str:
    """Directive block with the IIS default 15 fields."""
    return HEADER


@pytest.fixture(name="row")
def row_fixture() -> Callable[..., str]:
    """``row(clock, "401 2 5", ip=..., stem=..., user=..., ua=...)`` → one default-layout line."""
    return row


@pytest.fixture
def analyse() -> Callable[..., object]:
    """Run a fresh single-process LogAnalyzer over paths and return its LogAnalysis."""
    from toolkit.logs import LogAnalyzer

    def run(*paths: Path, **options: object):
        analyzer = LogAnalyzer(workers=options.pop("workers", 1), **options)  # type: ignore[arg-type]
        for path in paths:
            analyzer.feed_path(path)
        return analyzer.result()
    return run


@pytest.fixture
def write_log(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path
    return write
