"""Every test: a failing test that loaded a lab fleet says at which second, and how to run it there again.

The lab moves a fleet's traffic to the second it is loaded, and that second decides where the daily log
files split (toolkit/lab/rollover.py); IISFLEET_LAB_START replays it (toolkit.lab.model.lab_clock).

A suite started in the background of a non-interactive shell (`pytest &` in a script) inherits Ctrl-C
ignored, and so would every `iisfleet run` a test starts, which then rightly keeps it ignored: the tests
that press Ctrl-C on a run would fail for a reason that is not the product's. The session restores it.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Generator

import pytest

_STARTED = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    model = sys.modules.get("toolkit.lab.model")
    if not report.failed or model is None:
        return
    started = item.stash.get(_STARTED, 0.0)
    loads = [fleet_clock for real, fleet_clock in model.LOADED_AT if real >= started]
    if loads:
        seconds = sorted({time.strftime("%H:%M:%S", time.gmtime(at)) for at in loads})
        report.sections.append(("lab fleet loaded at", (
            f"UTC {', '.join(seconds)}: the second decides where the fleet's daily log files split; "
            f"run the test again there with {model.START_ENV}={seconds[0]}")))
