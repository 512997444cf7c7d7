"""`iisfleet run PLAYBOOK -i INVENTORY`: sweep a fleet and write a run directory.

Thin: parse options, load the inventory and the playbook, call ``toolkit.runner.run_playbook`` with
progress hooks, print a summary, choose the exit code. Exit codes: 0 every host reached; 3 some hosts
could not be reached (dns/connect/tls/auth/timeout); 2 bad command line, inventory or playbook;
130 interrupted with Ctrl-C (the run directory still holds everything collected).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.markup import escape
from rich.table import Table

from toolkit.cli._common import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, console, emit_json, err_console, fail, is_tty
from toolkit.cli.history import HistoryOption, record_run
from toolkit.cli.worker import (ArtifactCertOption, ArtifactKeyOption, ArtifactListenOption, ArtifactUrlOption,
                                BrokerGraceOption, BrokerOption, Engine, EngineOption, VisibilityOption, celery_engine,
                                resolve_engine)
from toolkit.errors import InventoryError, StorageError, ToolkitError
from toolkit.models import HostConfig, HostResult
from toolkit.runner import RunHooks
from toolkit.secrets import redact
from toolkit.textsafe import display_text

EXIT_INTERRUPTED = 130

_STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red", "skipped": "dim"}


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return display_text(redact(super().format(record)), one_line=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (library threads may log after a test swapped it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(verbose: bool) -> None:
    """``--verbose``: iisfleet's own debug log on stderr, every line scrubbed of known secrets.

    Third-party loggers never go below WARNING: pypsrp and urllib3 debug output holds whole protocol
    messages. Without ``--verbose`` their ERROR lines (paramiko's "Socket exception", pypsrp's fault
    parsing) are silenced too: the host's categorised result says the same thing in plain words.
    """
    handler = _StderrHandler()
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("toolkit").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("paramiko", "pypsrp", "spnego", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.CRITICAL)


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` into a dict; the playbook coerces the types."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        params[key.strip()] = value
    return params


def prompt_secret(text: str) -> str:
    """Ask for a password on the terminal; no answer (standard input closed, Ctrl-C) is a usage error."""
    if not sys.stdin.isatty():  # getpass would warn and read the password with echo from the pipe
        raise InventoryError(f"no terminal to ask \"{text.strip().rstrip(':')}\"",
                             explanation="Unattended runs need {env: NAME} or {keyring: ...} credentials "
                                         "instead of {prompt: true}.")
    try:
        # The text already ends with ": " ("Password for X (credential ops): "): no second suffix.
        return typer.prompt(text.rstrip(), prompt_suffix=" ", hide_input=True, err=True)
    except typer.Abort:
        raise InventoryError(f"no answer to the password prompt \"{text.strip().rstrip(':')}\"",
                             explanation="Unattended runs need {env: NAME} or {keyring: ...} credentials "
                                         "instead of {prompt: true}.") from None


def load_targets(inventory: Path, limit: str | None, ca_bundle: Path | None = None) -> tuple[list[HostConfig], bool]:
    """The selected hosts and whether the inventory is a simulated (lab) one.

    ``ca_bundle`` (``--ca-bundle``) replaces every WinRM host's CA bundle: the quick fix when certificates
    come from an internal CA the system store does not hold.
    """
    hosts, simulated, _, _ = load_run_targets(inventory, limit, ca_bundle)
    return hosts, simulated


def load_run_targets(inventory: Path, limit: str | None, ca_bundle: Path | None = None) \
        -> tuple[list[HostConfig], bool, Any, str | None]:
    """``load_targets`` plus the controller-side step for the inventory's ``directory:`` section (or None)
    and the inventory's ``engine:`` (or None)."""
    hosts, loaded = load_selected(inventory, limit, ca_bundle)
    return hosts, bool(getattr(loaded, "simulated", False)), directory_step(loaded), getattr(loaded, "engine", None)


def load_selected(inventory: Path, limit: str | None, ca_bundle: Path | None = None) -> tuple[list[HostConfig], Any]:
    """The selected hosts (credentials resolved) and the loaded inventory (its other sections)."""
    from toolkit.inventory import load_inventory

    loaded = load_inventory(inventory, prompt=prompt_secret)
    for warning in loaded.warnings:  # e.g. a literal ansible_password, hosts defaulting to SSH
        err_console.print(f"[yellow]warning:[/] {escape(display_text(redact(warning)))}", highlight=False)
    hosts = loaded.select(limit)
    if not hosts:
        raise typer.BadParameter(f"--limit {limit!r} selects no host" if limit
                                 else f"{inventory}: the inventory has no hosts")
    if ca_bundle is not None:
        hosts = [replace(h, winrm=replace(h.winrm, ca_bundle=str(ca_bundle))) for h in hosts]
    return hosts, loaded


def directory_step(loaded: Any) -> Any:
    """``run_dir -> None``: query the domain controllers after the hosts (None without ``directory:``)."""
    config = getattr(loaded, "directory", None)
    if config is None:
        return None
    ref = config.credential
    credential = loaded.resolver.resolve(ref) if ref is not None and ref.kind not in ("kerberos", "none") else None

    def step(run_dir: Path) -> None:
        from toolkit.directory import collect_for_run

        collect_for_run(run_dir, config, credential)
    return step


CaBundleOption = Annotated[Path | None, typer.Option(
    "--ca-bundle", exists=True, dir_okay=False, help="PEM file of CAs to trust for WinRM HTTPS (all hosts).")]
# The options every command that reaches hosts shares (`run`, `hosts check`).
InventoryOption = Annotated[Path, typer.Option(
    "--inventory", "-i", help="Inventory file (iisfleet or Ansible).")]
LimitOption = Annotated[str | None, typer.Option(
    "--limit", "-l", help="Hosts, groups, tag:<t>, globs; !x excludes.")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Debug log on stderr (secrets are masked).")]


#: Off a terminal: at most one "ok" host line per this many seconds (failures are always printed) ...
PROGRESS_LINE_INTERVAL_S = 1.0
#: ... and a "still running" line when nothing was printed for this long.
HEARTBEAT_S = 30.0


class ProgressHooks(RunHooks):
    """Runner hooks for the terminal: a Rich live bar (done/failed/running, elapsed, ETA) on a TTY. Off a
    terminal (CI, cron, a pipe): one line per finished host, rate-limited (ok hosts at most one line per
    second, the others counted into the next line), and a "still running" line naming the slowest hosts
    and their current step when nothing finished for 30 s. Called from worker threads: counters are
    guarded, Rich locks itself."""

    def __init__(self, total: int, *, live: bool, json_mode: bool) -> None:
        self._out = err_console if json_mode else console
        self._lock = threading.Lock()
        self._started: set[str] = set()
        self._running = 0
        self._failed = 0
        self._total = total
        self._done = 0
        self._held = 0  # finished hosts not named on a line yet (rate limit)
        self._last_line = time.monotonic()
        self._current: dict[str, tuple[str, float]] = {}  # host -> (step, since)
        self._quiet = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.progress: Progress | None = None
        if live:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                                     TimeRemainingColumn(), console=err_console)
            self._task = self.progress.add_task("starting", total=total)

    def __enter__(self) -> ProgressHooks:
        """The live display appears when the run starts and is always taken down when the block ends."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._quiet.set()
        if self.progress is not None:
            self.progress.stop()

    def run_started(self, run_dir: Path, hosts: list[HostConfig]) -> None:
        self._total = len(hosts)
        if self.progress is not None:
            self.progress.reset(self._task, total=len(hosts))  # elapsed and ETA count from here
            self.progress.start()
            return
        self._last_line = time.monotonic()
        self._heartbeat = threading.Thread(target=self._beat, name="iisfleet-progress", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._quiet.wait(1.0):
            with self._lock:
                if time.monotonic() - self._last_line < HEARTBEAT_S or not self._current:
                    continue
                self._last_line = time.monotonic()
                now = time.monotonic()
                slowest = sorted(self._current.items(), key=lambda item: item[1][1])[:3]
                named = ", ".join(f"{host} ({step}, {now - since:.0f} s)" for host, (step, since) in slowest)
                line = (f"[{self._done}/{self._total}] still running {len(self._current)}: {named}"
                        + (" ..." if len(self._current) > 3 else ""))
            self._out.print(line, highlight=False, markup=False, soft_wrap=True)

    def step_started(self, host: HostConfig, collector_id: str) -> None:
        with self._lock:
            self._current[host.name] = (collector_id, time.monotonic())

    def _redraw(self) -> None:
        if self.progress is not None:
            self.progress.update(self._task, description=f"running {self._running}  failed {self._failed}")

    def host_started(self, host: HostConfig) -> None:
        with self._lock:
            self._started.add(host.name)
            self._running += 1
            self._redraw()

    def host_finished(self, result: HostResult) -> None:
        with self._lock:
            if result.host in self._started:
                self._running -= 1
            if result.status == "failed":
                self._failed += 1
            self._current.pop(result.host, None)
            self._done += 1
            self._redraw()
            if self.progress is not None:
                self.progress.advance(self._task)
                return
            now = time.monotonic()
            if (result.status == "ok" and self._done < self._total
                    and now - self._last_line < PROGRESS_LINE_INTERVAL_S):
                self._held += 1
                return
            line = f"[{self._done}/{self._total}] {_host_line(result)}"
            if self._held:
                line += f" (+{self._held} more finished)"
            self._held = 0
            self._last_line = now
        self._out.print(line, highlight=False, markup=False, soft_wrap=True)

    def interrupted(self, level: int) -> None:
        message = {
            1: "interrupt: starting no new hosts; running hosts finish their steps "
               "(Ctrl-C again stops them now, a third exits at once)",
            2: "interrupt: stopping the running steps; sessions close within a few seconds "
               "(Ctrl-C again exits at once)",
        }.get(level, "interrupt: exiting now; run.json records the run as interrupted")
        err_console.print(f"[yellow]{message}[/]")


def _host_line(result: HostResult) -> str:
    line = f"{display_text(result.host)} {result.status} {result.duration_s:.1f}s"
    if result.error is not None:
        line += f" [{result.error.category}] {display_text(redact(result.error.message))}"
    return line


def summary_table(results: list[HostResult]) -> Table:
    table = Table(title="hosts", show_lines=False)
    for column in ("host", "status", "steps ok/run", "time", "error"):
        table.add_column(column, overflow="fold")
    for result in results:
        ran = [s for s in result.steps if s.status != "skipped"]
        ok = sum(1 for s in ran if s.status == "ok")
        error = ""
        if result.error is not None:
            error = f"{result.error.category}: {display_text(redact(result.error.message))}"
            if result.error.explanation:
                error += f"\n→ {display_text(redact(result.error.explanation))}"
        cut = [s for s in result.steps if (s.skipped_reason or "").startswith(("the host's", "the run"))]
        if cut:  # say why steps did not run: the budget or the operator, with its number
            error += ("\n" if error else "") + f"{len(cut)} step(s) not run: {cut[-1].skipped_reason}"
        style = _STATUS_STYLE.get(result.status, "")
        # Error text is host output (a WinRM fault, a CLIXML message): print it as text, never as markup.
        table.add_row(escape(display_text(result.host)), f"[{style}]{result.status}[/]", f"{ok}/{len(ran)}",
                      f"{result.duration_s:.1f}s", escape(error))
    return table


def summary_json(summary: Any) -> dict[str, Any]:
    from toolkit.rundir import error_dict, step_dict

    return {
        "run_dir": str(summary.run_dir), "playbook": summary.playbook, "status": summary.status,
        "started_utc": summary.started_utc, "finished_utc": summary.finished_utc,
        "duration_s": round(summary.duration_s, 3),
        "counts": {s: summary.count(s) for s in ("ok", "partial", "failed", "skipped")},
        "hosts": [{"host": h.host, "address": h.address, "transport": h.transport, "status": h.status,
                   "error": error_dict(h.error), "steps": [step_dict(s) for s in h.steps]} for h in summary.hosts],
    }


def run_command(
    playbook: Annotated[str | None, typer.Argument(
        help="A bundled playbook name (e.g. triage-401) or a path to a .yml (with --resume: the run's own).")] = None,
    inventory: Annotated[Path | None, typer.Option(
        "--inventory", "-i", help="Inventory file (iisfleet or Ansible); with --resume: the run's own.")] = None,
    limit: LimitOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default ./runs/<UTC>-<playbook>).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Playbook parameter NAME=VALUE (repeat).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=1024, help="Hosts worked on at once.")] = 32,
    deadline: Annotated[float | None, typer.Option("--deadline", min=1, help="Stop the whole run after this many seconds.")] = None,
    ca_bundle: CaBundleOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")] = False,
    verbose: VerboseOption = False,
    history: HistoryOption = None,
    engine: EngineOption = None,
    broker: BrokerOption = None,
    visibility_timeout: VisibilityOption = 3600.0,
    artifact_listen: ArtifactListenOption = "127.0.0.1:0",
    artifact_url: ArtifactUrlOption = None,
    artifact_cert: ArtifactCertOption = None,
    artifact_key: ArtifactKeyOption = None,
    broker_grace: BrokerGraceOption = 30.0,
    reference_time: Annotated[str | None, typer.Option(
        "--reference-time", help="The 'now' the playbook's time window ({{ since | ago }}) is computed from, ISO "
        "8601 UTC (e.g. 2026-12-04T20:00:00Z); default: when the run starts. Two runs with the same reference "
        "time collect the same window.")] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", file_okay=False, help="Finish the interrupted run in this run directory: hosts and steps "
        "that finished are not run again, partial raw files continue where they stopped. The playbook, "
        "inventory, hosts, parameters and time window are the run's own (-p overrides a parameter).")] = None,
) -> None:
    """Run a playbook's collectors on every selected host and write a run directory.

    `iisfleet run --resume RUN_DIR` finishes a run that a dropped connection, Ctrl-C, SIGTERM, a timeout or
    a crash cut short, in the same directory: only what is missing is collected (docs/run.md, "Resuming").
    Exit codes are those of a run; 2 also when RUN_DIR holds no run to resume.

    The run is then recorded in the run history (`iisfleet runs list`, `iisfleet diff`); IISFLEET_HISTORY=off
    turns that off."""
    from toolkit.cli.worker import artifact_store_of
    from toolkit.rundir import default_run_dir
    from toolkit.runner import run_playbook

    setup_logging(verbose)
    if resume is None and (playbook is None or inventory is None):  # as Click says it for required ones
        missing = sys.modules[typer.BadParameter.__module__].MissingParameter  # the Click typer runs on
        raise missing(param_type="argument" if playbook is None else "option",
                      param_hint="'PLAYBOOK' (or --resume RUN_DIR)" if playbook is None
                      else "'--inventory' / '-i'")
    try:
        from toolkit.playbooks import load_playbook
    except ImportError:
        fail("playbook support (toolkit.playbooks) is not available in this installation")
    try:
        params = parse_params(param)
        reference = _reference_time(reference_time)
        if resume is not None:
            playbook, inventory, limit, params = _resume_targets(resume, playbook, inventory, limit, params, out, engine)
        book = load_playbook(playbook)
        hosts, loaded = load_selected(inventory, limit, ca_bundle)
        simulated, after_hosts = bool(getattr(loaded, "simulated", False)), directory_step(loaded)
        engine = resolve_engine(engine, getattr(loaded, "engine", None))
        run_dir = resume or out or default_run_dir(book.name)
        live = is_tty() and sys.stderr.isatty() and not json_output
        distributed = None
        if engine is Engine.celery:
            distributed = celery_engine(book, params, hosts, broker=broker, visibility_timeout=visibility_timeout,
                                        artifact_listen=artifact_listen, artifact_url=artifact_url,
                                        artifact_cert=artifact_cert, artifact_key=artifact_key, deadline=deadline,
                                        broker_grace=broker_grace, artifact_store=artifact_store_of(loaded))
        stop, stop_running = threading.Event(), threading.Event()
        with ProgressHooks(len(hosts), live=live, json_mode=json_output) as hooks, \
                sigterm_stops(stop, stop_running), third_interrupt_exits():
            summary = run_playbook(book, hosts, out_dir=run_dir, params=params, concurrency=concurrency,
                                   deadline_s=deadline, hooks=hooks, simulated=simulated, inventory=str(inventory),
                                   after_hosts=after_hosts, engine=distributed, stop=stop,
                                   stop_running=stop_running, resume=resume is not None, reference=reference)
    except typer.BadParameter as exc:
        fail(str(exc))
    except ToolkitError as exc:
        fail(exc, EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write the run directory: {exc.filename or ''} {exc.strerror or exc}", EXIT_USAGE)

    record_run(summary.run_dir, history)
    if json_output:
        emit_json(summary_json(summary))
    else:
        console.print(summary_table(summary.hosts))
        counts = ", ".join(f"{summary.count(s)} {s}" for s in ("ok", "partial", "failed", "skipped"))
        console.print(f"run {summary.status} in {summary.duration_s:.1f}s: {counts}", highlight=False)
        retry = [h.host for h in summary.hosts if h.status in ("failed", "skipped", "partial")]
        retry_command = None
        if retry:
            retry_command = shlex.join(["iisfleet", "run", str(playbook), "-i", str(inventory), "--limit", ",".join(retry)])
        print_outcome(summary.run_dir, summary.hosts, retry_command=retry_command)
        if retry:
            console.print("or finish this run in its own directory (only what is missing is collected): "
                          + shlex.join(["iisfleet", "run", "--resume", str(summary.run_dir)]), highlight=False,
                          soft_wrap=True)
    if summary.storage_error is not None:
        # The run stopped early: what was collected is on disk, and run.json says how the run ended.
        error = summary.storage_error
        fail(StorageError(f"[{error.category}] {error.message}", path=error.path, explanation=error.explanation),
             EXIT_USAGE)
    if distributed is not None and distributed.error:
        err_console.print(f"[bold red]error:[/] {escape(distributed.error)}", highlight=False)
        err_console.print(f"  the partial run is reportable: iisfleet report {escape(str(summary.run_dir))}",
                          highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE)
    if summary.status == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_UNREACHABLE if summary.unreachable else EXIT_OK)


def _reference_time(text: str | None) -> Any:
    from datetime import datetime, timezone

    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"expected an ISO 8601 UTC time such as 2026-12-04T20:00:00Z, got {text!r}",
                                 param_hint="--reference-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).replace(microsecond=0)


def _resume_targets(run_dir: Path, playbook: str | None, inventory: Path | None, limit: str | None,
                    params: dict[str, Any], out: Path | None, engine: Any) -> tuple[str, Path, str, dict[str, Any]]:
    """Playbook, inventory, hosts and parameters of the run to resume (the command line may name the
    playbook file and inventory again, e.g. when they moved, and override parameters)."""
    from toolkit.errors import UsageError
    from toolkit.resume import load_previous
    from toolkit.secrets import MASK

    if out is not None:
        raise UsageError("--resume writes into the run directory it finishes: leave out --out")
    if engine is Engine.celery:
        raise UsageError("--resume works with the local engine only")
    if limit is not None:
        raise UsageError("--resume works on the run's own hosts: leave out --limit")
    meta, _hosts = load_previous(run_dir)
    names = [str(name) for name in meta.get("hosts") or []]
    if not names:
        raise UsageError(f"{run_dir}: the run names no hosts; nothing to resume")
    recorded = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    masked = sorted(name for name, value in recorded.items() if value == MASK and name not in params)
    if masked:
        raise UsageError(f"parameter(s) {', '.join(masked)} were secrets and are not stored in run.json: give them "
                         "again with -p NAME=VALUE")
    merged = {**{k: v for k, v in recorded.items() if v is not None}, **params}
    inventory = inventory or (Path(meta["inventory"]) if meta.get("inventory") else None)
    if inventory is None:
        raise UsageError(f"{run_dir}: run.json does not say which inventory it used: give it with -i")
    # every host by its exact name (a name that is also a group or glob would select more)
    recorded_file = meta.get("playbook_file")
    if playbook is None:
        playbook = recorded_file if recorded_file and Path(recorded_file).is_file() else str(meta.get("playbook"))
    return playbook, inventory, ",".join(names), merged


@contextmanager
def sigterm_stops(stop: threading.Event, stop_running: threading.Event) -> Iterator[None]:
    """While the block runs, SIGTERM does what two Ctrl-C do: no new hosts, running steps stopped, and
    run.json says ``interrupted``. Only the main thread may install a handler (tests call us elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        err_console.print("[yellow]SIGTERM: stopping the running steps; the run directory is kept[/]")
        stop.set()
        stop_running.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def third_interrupt_exits() -> Iterator[None]:
    """The runner lets a third Ctrl-C out at once (run.json already says ``interrupted``); worker threads
    may still sit in a network call, so leave without joining them."""
    try:
        yield
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)


def _report_files(run_dir: Path) -> dict[str, Path]:
    from toolkit.report import FILE_NAMES

    return {fmt: run_dir / "report" / name for fmt, name in FILE_NAMES.items()
            if (run_dir / "report" / name).is_file()}


def print_outcome(run_dir: Path, hosts: list[HostResult], *, retry_command: str | None = None) -> None:
    """The end of `run` and `demo`: findings by severity, hosts that failed by category, where the reports
    are, and the exact command to run next."""
    import json

    out = console
    reports = _report_files(run_dir)
    model: dict[str, Any] | None = None
    if "json" in reports:
        try:
            model = json.loads(reports["json"].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            model = None
    if model is not None:
        from toolkit.report import SEVERITIES

        counted = model.get("summary", {}).get("findings_by_severity", {})
        by_severity = {severity: int(counted.get(severity) or 0) for severity in SEVERITIES}  # worst first
        total = sum(by_severity.values())
        detail = ", ".join(f"{count} {severity}" for severity, count in by_severity.items() if count)
        out.print(f"findings: {total}" + (f" ({detail})" if detail else ""), highlight=False)
    for status in ("failed", "partial"):
        affected = [h for h in hosts if h.status == status]
        if not affected:
            continue
        categories: dict[str, int] = {}
        for host in affected:
            category = host.error.category if host.error is not None else "cut short"
            categories[category] = categories.get(category, 0) + 1
        detail = ", ".join(f"{name} {count}" for name, count in sorted(categories.items(), key=lambda kv: -kv[1]))
        out.print(f"hosts {status}: {len(affected)} ({detail})", highlight=False)
    skipped = sum(1 for h in hosts if h.status == "skipped")
    if skipped:
        out.print(f"hosts skipped: {skipped} (not started or stopped before their first step)", highlight=False)
    out.print(f"run directory: {run_dir}", highlight=False)
    if "html" in reports:
        out.print(f"report: {reports['html']}", highlight=False)
        others = ", ".join(p.name for fmt, p in reports.items() if fmt != "html")
        out.print(f"        {run_dir / 'report'}/ also holds {others}", highlight=False)
    quoted = shlex.quote(str(run_dir))
    if model is not None:
        worst = next((sev for sev, count in by_severity.items() if count and sev != "info"), None)
        threshold = "high" if worst in ("critical", "high") else "low"
        out.print(f"next: iisfleet report {quoted} --fail-on {threshold}   (exits 1 while a finding at "
                  f"{threshold} or above remains; use it in CI or after a fix)", highlight=False)
    else:
        out.print(f"next: iisfleet report {quoted}   (diagnose the collected evidence)", highlight=False)
    if retry_command:
        out.print(f"retry the hosts that did not finish: {retry_command}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``iisfleet run`` to the root app."""
    app.command("run", help="Run a playbook across the fleet and write a run directory.")(run_command)
