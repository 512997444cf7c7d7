"""Where a host session's WinRM bytes go: per WS-Management message, per PSRP message type, per step.

Runs one playbook locally, one host at a time (so every socket byte belongs to the one request in flight),
against a lab fleet served by a separate ``iisfleet lab serve`` process (WinRM over HTTP with NTLM message
encryption), and attributes every byte the controller's sockets send and receive:

* to the WS-Management action of the request (shell Create = runspace pool init, Command = pipeline with
  its script and parameters, Receive polls, Signal, Delete) and to the step (collector) or step batch
  (``run_batch``: several steps in one pipeline) running then;
* inside the decrypted bodies, to the PSRP message types carried in base64 fragments (CREATE_PIPELINE,
  PIPELINE_OUTPUT, PROGRESS_RECORD, INFORMATION_RECORD, PIPELINE_STATE ...);
* the NTLM sealing + HTTP envelope overhead is what the socket saw minus the plaintext SOAP length.

Usage::

    .venv/bin/python bench/distributed/wire_breakdown.py --hosts 4 [--playbook triage-401] [--json]
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "sweep"))
sys.path.insert(0, str(REPO / "bench" / "distributed"))

_ACTION = re.compile(rb"<(?:\w+:)?Action[^>]*>[^<]*/([A-Za-z]+)</(?:\w+:)?Action>")
_STREAM = re.compile(rb"<(?:\w+:)?(?:Stream|creationXml|Arguments)[^>]*>([A-Za-z0-9+/=\s]+)</")
_PSRP_NAMES = {0x00010002: "SESSION_CAPABILITY", 0x00010004: "INIT_RUNSPACEPOOL", 0x0002100B: "RUNSPACEPOOL_INIT_DATA",
               0x00021005: "RUNSPACEPOOL_STATE", 0x00021006: "CREATE_PIPELINE", 0x00021009: "APPLICATION_PRIVATE_DATA",
               0x00041003: "END_OF_PIPELINE_INPUT", 0x00041004: "PIPELINE_OUTPUT", 0x00041005: "ERROR_RECORD",
               0x00041006: "PIPELINE_STATE", 0x00041008: "VERBOSE_RECORD", 0x00041009: "WARNING_RECORD",
               0x00041010: "PROGRESS_RECORD", 0x00041011: "INFORMATION_RECORD", 0x00041007: "DEBUG_RECORD"}

_step = threading.local()


def _psrp_types(body: bytes, objects: dict[int, str]) -> collections.Counter:
    """Base64-decoded fragment bytes per PSRP message type found in a SOAP body (``objects`` remembers
    the type of a message whose first fragment came in an earlier body)."""
    found: collections.Counter = collections.Counter()
    for match in _STREAM.finditer(body):
        try:
            data = base64.b64decode(b"".join(match.group(1).split()))
        except ValueError:
            continue
        offset = 0
        while offset + 21 <= len(data):
            object_id, _fragment, flags, length = struct.unpack(">QQBI", data[offset:offset + 21])
            blob = data[offset + 21:offset + 21 + length]
            if flags & 1 and len(blob) >= 8:  # start fragment: the message header follows
                objects[object_id] = _PSRP_NAMES.get(struct.unpack("<I", blob[4:8])[0], hex(struct.unpack("<I", blob[4:8])[0]))
            # base64 on the wire: 4/3 of the fragment
            found[objects.get(object_id, "?")] += (21 + len(blob)) * 4 // 3
            offset += 21 + length
    return found


def instrument(counted: dict[str, int]) -> dict:
    """Wrap pypsrp's HTTP transport and the WinRM transport's run_script; returns the tables they fill."""
    from pypsrp.wsman import _TransportHTTP

    from toolkit.collectors import parse_marker
    from toolkit.transports.winrm import WinRMTransport

    tables: dict = {"by_action": collections.defaultdict(lambda: [0, 0, 0, 0]),  # count, sent, received, plaintext
                    "by_step": collections.defaultdict(lambda: collections.Counter()),
                    "psrp_sent": collections.Counter(), "psrp_received": collections.Counter()}
    objects: dict[int, str] = {}
    original_send = _TransportHTTP.send

    def send(self, message, **kwargs):  # type: ignore[no-untyped-def]
        before_sent, before_received = counted["sent"], counted["received"]
        response = original_send(self, message, **kwargs)
        sent, received = counted["sent"] - before_sent, counted["received"] - before_received
        action_match = _ACTION.search(message)
        action = action_match.group(1).decode() if action_match else "?"
        step = getattr(_step, "name", "session open")
        row = tables["by_action"][action]
        row[0] += 1
        row[1] += sent
        row[2] += received
        row[3] += len(message) + len(response or b"")
        tables["by_step"][step][f"{action} sent"] += sent
        tables["by_step"][step][f"{action} received"] += received
        tables["psrp_sent"].update(_psrp_types(message, objects))
        tables["psrp_received"].update(_psrp_types(response or b"", objects))
        return response

    _TransportHTTP.send = send
    original_run = WinRMTransport.run_script

    def run_script(self, script, parameters, *, timeout):  # type: ignore[no-untyped-def]
        marker = parse_marker(script)
        _step.name = marker[0] if marker else "?"
        try:
            return original_run(self, script, parameters, timeout=timeout)
        finally:
            _step.name = "between steps"

    WinRMTransport.run_script = run_script
    original_batch = WinRMTransport.run_batch

    def run_batch(self, calls, on_result):  # type: ignore[no-untyped-def]
        names = [parse_marker(call.script) for call in calls]
        _step.name = "batch: " + ", ".join(m[0].replace("Get-", "") if m else "?" for m in names)
        try:
            return original_batch(self, calls, on_result)
        finally:
            _step.name = "between steps"

    WinRMTransport.run_batch = run_batch
    original_open, original_close = WinRMTransport.open, WinRMTransport.close

    def labelled(original, label):  # type: ignore[no-untyped-def]
        def call(self):  # type: ignore[no-untyped-def]
            _step.name = label
            return original(self)
        return call

    WinRMTransport.open = labelled(original_open, "session open")
    WinRMTransport.close = labelled(original_close, "session close")

    def restore() -> None:
        _TransportHTTP.send, WinRMTransport.run_script = original_send, original_run
        WinRMTransport.run_batch = original_batch
        WinRMTransport.open, WinRMTransport.close = original_open, original_close

    tables["restore"] = restore
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--playbook", action="append", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import bench as wire  # bench/distributed/bench.py: socket counting and the raw-file count
    from sweep import _serve, large_fleet

    from toolkit.inventory import load_inventory

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-wire-"))
    fleet = large_fleet(workdir, args.hosts)
    server = _serve(fleet, "http")
    report: dict = {}
    try:
        os.chdir(fleet.parent)
        hosts = load_inventory(fleet / "inventory.yml").select(None)
        wire._count_socket_bytes()
        for name in args.playbook or ["triage-401", "health-sweep"]:
            tables = instrument(wire._counted)
            measured = wire._local(name, hosts, workdir / f"wire-{name}", 1)
            n = len(hosts)
            per_host = lambda v: round(v / n)  # noqa: E731
            report[name] = {
                "totals_per_host": {k: measured[k] for k in ("wire_sent_per_host", "wire_received_per_host")},
                "raw_file_bytes_per_host": round(wire._raw_bytes(fleet, logs=name != "health-sweep")),
                "by_action_per_host": {a: {"requests": round(r[0] / n, 1), "sent": per_host(r[1]),
                                           "received": per_host(r[2]), "sealing_and_http": per_host(r[1] + r[2] - r[3])}
                                       for a, r in sorted(tables["by_action"].items())},
                "by_step_per_host": {s: {k: per_host(v) for k, v in sorted(c.items())}
                                     for s, c in tables["by_step"].items()},
                "psrp_base64_bytes_sent_per_host": {k: per_host(v) for k, v in tables["psrp_sent"].most_common()},
                "psrp_base64_bytes_received_per_host": {k: per_host(v) for k, v in
                                                        tables["psrp_received"].most_common()},
            }
            tables["restore"]()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, table in report.items():
        print(f"\n== {name}: per host, {table['totals_per_host']}, raw files {table['raw_file_bytes_per_host']}")
        print("-- by WS-Management action")
        for action, row in table["by_action_per_host"].items():
            print(f"   {action:10s} {row}")
        print("-- by step")
        for step, row in table["by_step_per_host"].items():
            print(f"   {step:26s} sent {sum(v for k, v in row.items() if k.endswith('sent')):7d}  received "
                  f"{sum(v for k, v in row.items() if k.endswith('received')):7d}  {dict(row)}")
        print("-- PSRP messages sent (base64 bytes)", table["psrp_base64_bytes_sent_per_host"])
        print("-- PSRP messages received (base64 bytes)", table["psrp_base64_bytes_received_per_host"])



if __name__ == "__main__":
    main()
