"""A realistic IIS server for the incident benchmark: a lab host with a week of W3C logs, HTTPERR logs, Failed
Request Tracing files and event logs of a chosen size, plus the fleet's own configuration and web.configs.

The fleet is the lab's `healthy` scenario (one host) with time shifting off, so the files are served as
written (no rewriting on the first request); the logs are dated up to the moment the fleet is made.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "target"))

from generate import write as write_w3c  # noqa: E402

from toolkit.lab.model.evtx import CHUNK_BYTES, evtx_bytes  # noqa: E402
from toolkit.lab.scenarios import generate  # noqa: E402

HOST = "web01"
FREB_EVENT = ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><Provider Name="WWW Server" '
              'Guid="{{3A2A4E84-4C21-4981-AE10-3FDA0D9B0F83}}"/><EventID>0</EventID><Version>1</Version><Level>4</Level>'
              '<Opcode>{opcode}</Opcode><Keywords>0x0</Keywords><TimeCreated SystemTime="{time}"/><Correlation '
              'ActivityID="{{80000{n:03d}-0000-EA00-B63F-84710C7967BB}}"/><Execution ProcessID="4120" ThreadID="{thread}"/>'
              '<Computer>WEB01</Computer></System><EventData><Data Name="ContextId">{{80000{n:03d}-0000-EA00-B63F-84710C7967BB}}'
              '</Data><Data Name="ModuleName">{module}</Data><Data Name="Notification">{notification}</Data>'
              '<Data Name="HttpStatus">401</Data><Data Name="HttpReason">Unauthorized</Data><Data Name="HttpSubStatus">2'
              '</Data><Data Name="ErrorCode">2147942405</Data><Data Name="ConfigExceptionInfo"></Data></EventData>'
              '<RenderingInfo Culture="en-US"><Opcode>MODULE_SET_RESPONSE_ERROR_STATUS</Opcode><Keywords>'
              '<Keyword>RequestNotifications</Keyword></Keywords><freb:Description Data="Notification">AUTHENTICATE_REQUEST'
              '</freb:Description></RenderingInfo></Event>\n')


def _freb(path: Path, when: datetime, number: int, events: int) -> None:
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="freb.xsl"?>\n'
            f'<failedRequest url="http://web01:80/intranet/home" siteId="1" appPoolId="DefaultAppPool" processId="4120" '
            f'verb="GET" remoteUserName="" userName="" tokenUserName="NT AUTHORITY\\IUSR" authenticationType="anonymous" '
            f'activityId="{{80000{number:03d}-0000-EA00-B63F-84710C7967BB}}" failureReason="STATUS_CODE" statusCode="401.2" '
            f'triggerStatusCode="401" timeTaken="15" xmlns:freb="http://schemas.microsoft.com/win/2006/06/iis/freb">\n')
    body = "".join(FREB_EVENT.format(opcode=i % 60, time=(when + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                                     + "Z", n=number, thread=2000 + i % 7, module=("WindowsAuthenticationModule",
                                     "AnonymousAuthenticationModule", "UrlAuthorizationModule")[i % 3],
                                     notification=("AUTHENTICATE_REQUEST", "AUTHORIZE_REQUEST")[i % 2])
                   for i in range(events))
    path.write_text(head + body + "</failedRequest>\n", encoding="utf-8")


def _events(log: str, count: int, start: datetime, end: datetime, rng: random.Random) -> list[dict]:
    span = (end - start).total_seconds()
    provider = {"Security": "Microsoft-Windows-Security-Auditing", "System": "Service Control Manager",
                "Application": "ASP.NET 4.0.30319.0"}.get(log, log)
    out = []
    for number in range(1, count + 1):
        when = start + timedelta(seconds=span * number / count)
        data = [("SubjectUserSid", "S-1-5-18"), ("SubjectUserName", "WEB01$"), ("SubjectDomainName", "CONTOSO"),
                ("TargetUserName", f"user{rng.randrange(500):03d}"), ("TargetDomainName", "CONTOSO"),
                ("Status", "0xc000006d"), ("SubStatus", rng.choice(["0xc000006a", "0xc0000064"])), ("LogonType", "3"),
                ("IpAddress", f"10.{rng.randrange(1, 40)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"),
                ("WorkstationName", f"PC{rng.randrange(9999):04d}"), ("AuthenticationPackageName", "NTLM")]
        out.append({"provider": provider, "id": 4625 if log == "Security" else 7036, "record_id": number,
                    "time": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "channel": log, "computer": "web01.contoso.com",
                    "data": data})
    return out


def build(out: Path, *, days: int = 7, lines_per_day: int = 300_000, freb: int = 20, freb_events: int = 120,
          evtx_mib: float = 200.0, seed: int = 1) -> dict:
    """Writes the fleet under ``out`` and returns what it holds (bytes per kind, the window's start)."""
    generate("healthy", 1, out, seed=seed)
    fleet_yml = out / "fleet.yml"
    text = fleet_yml.read_text(encoding="utf-8")
    assert "  shift: true\n" in text, "the generated fleet.yml no longer says `shift: true` under clock:"
    fleet_yml.write_text(text.replace("  shift: true\n", "  shift: false\n", 1), encoding="utf-8")
    host = out / "hosts" / HOST
    files = host / "files"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first_day = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0)
    logs = files / "C/inetpub/logs/LogFiles/W3SVC1"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    for day in range(days):
        start = first_day + timedelta(days=day)
        seconds = min(86_400, (now - start).total_seconds()) if day == days - 1 else 86_400
        lines = max(1000, int(lines_per_day * seconds / 86_400))
        write_w3c(logs / f"u_ex{start:%y%m%d}.log", lines, seed=seed + day, start=start, per_second=lines / max(seconds, 1))
    traces = files / "C/inetpub/logs/FailedReqLogFiles/W3SVC1"
    traces.mkdir(parents=True, exist_ok=True)
    for number in range(1, freb + 1):
        _freb(traces / f"fr{number:06d}.xml", now - timedelta(hours=number * 7), number, freb_events)
    rng = random.Random(seed)
    evtx = host / "evtx"
    evtx.mkdir(exist_ok=True)
    sample = evtx_bytes(_events("Security", 500, first_day, now, random.Random(seed)))
    per_chunk = 500 / ((len(sample) - 4096) / CHUNK_BYTES)  # records that fit one 64 KiB chunk
    for log, share in {"Security": 0.75, "System": 0.15, "Application": 0.10}.items():
        count = max(1, int(evtx_mib * 2**20 * share / CHUNK_BYTES * per_chunk))
        (evtx / f"{log}.evtx").write_bytes(evtx_bytes(_events(log, count, first_day, now, rng)))
    sizes: dict[str, int] = {}
    for path in host.rglob("*"):
        if path.is_file():
            kind = ("freb" if "FailedReqLogFiles" in path.as_posix() else "w3c" if "LogFiles/W3SVC" in path.as_posix()
                    else "evtx" if path.suffix == ".evtx" else "other")
            sizes[kind] = sizes.get(kind, 0) + path.stat().st_size
    return {"fleet": str(out), "host": HOST, "since": first_day.strftime("%Y-%m-%dT%H:%M:%SZ"), "bytes": sizes}


if __name__ == "__main__":
    import json
    print(json.dumps(build(Path(sys.argv[1]), lines_per_day=int(sys.argv[2]) if len(sys.argv) > 2 else 300_000)))
