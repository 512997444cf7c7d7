"""Write raw-artefact streams the way the host side sends them (docs/bundle.md, "Raw artefacts"):
headers, then one chunk per part, then the final part. Used to (re)build the recorded fixtures in
tests/fixtures/artefacts/ (``python tests/artefacts/streams.py``) and, in tests, to cut a stream where
an interruption would; never to decide what a test expects (expectations are in each case's
expected.json)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "artefacts"


def _part(index: int, data: dict[str, Any], *, final: bool = False, errors: list | None = None) -> str:
    return json.dumps({"schema": "iisfleet.collector/1", "collector": "Get-IisRawArtefact", "version": 1,
                       "host": "WEB01", "time_utc": "2026-12-04T20:00:00Z", "part": {"index": index, "final": final},
                       "data": data, "errors": errors or []}, separators=(",", ":"))


def stream(files: list[tuple[str, str, bytes]], *, chunk_bytes: int = 65536,
           have: dict[str, int] | None = None) -> list[str]:
    """The parts for ``files`` (kind, host path, bytes); ``have`` maps a host path to bytes received."""
    have = have or {}
    lines: list[str] = []
    sent = 0
    for number, (kind, host_path, content) in enumerate(files, 1):
        received = have.get(host_path, 0)
        start = received - received % chunk_bytes
        status = "already-collected" if host_path in have and received == len(content) else "send"
        header = {"file_id": f"f{number}", "kind": kind, "host_path": host_path, "size": len(content),
                  "sha256": hashlib.sha256(content).hexdigest(), "created_utc": "2026-12-01T00:00:00Z",
                  "modified_utc": "2026-12-04T19:59:00Z", "accessed_utc": None, "owner": "BUILTIN\\Administrators",
                  "chunk_bytes": chunk_bytes, "start_offset": start if status == "send" else len(content),
                  "status": status}
        lines.append(_part(len(lines), {"artefacts": [header]}))
        if status != "send":
            continue
        for offset in range(start, len(content), chunk_bytes):
            raw = content[offset:offset + chunk_bytes]
            blob = {"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(raw, mtime=0)).decode(),
                    "bytes": len(raw), "truncated": False, "sha256": hashlib.sha256(raw).hexdigest()}
            lines.append(_part(len(lines), {"chunks": [{"file_id": f"f{number}", "offset": offset, "length": len(raw),
                                                         "sha256": blob["sha256"], "content": blob}]}))
            sent += len(raw)
    lines.append(_part(len(lines), {"summary": {"files": len(files), "bytes_sent": sent}}, final=True))
    return lines


def sample_files() -> list[tuple[str, str, bytes]]:
    """A W3C log of a few chunks, an HTTPERR log, an empty file and a config file."""
    w3c = b"#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time s-ip cs-method " \
          b"cs-uri-stem sc-status\r\n" + b"".join(
              b"2026-12-04 %02d:%02d:%02d 10.0.0.5 GET /app/page%d.aspx %d\r\n"
              % (i // 3600 % 24, i // 60 % 60, i % 60, i % 97, 200 if i % 7 else 401) for i in range(6000))
    return [("w3c", "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261204.log", w3c),
            ("httperr", "C:\\Windows\\System32\\LogFiles\\HTTPERR\\httperr1.log", b"#Fields: date time\r\n" * 50),
            ("freb", "C:\\inetpub\\logs\\FailedReqLogFiles\\W3SVC1\\empty.xml", b""),
            ("config", "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config",
             b"<configuration>\r\n  <system.webServer />\r\n</configuration>\r\n")]


def write_fixtures() -> None:
    """tests/fixtures/artefacts/<case>/stream.jsonl and expected.json."""
    files = sample_files()
    expected_files = {f"{kind}/" + "/".join(_encode(part) for part in path.replace("\\", "/").split("/")):
                      hashlib.sha256(content).hexdigest() for kind, path, content in files}
    cases = {"complete": (stream(files), expected_files, [])}
    damaged = stream(files)
    third = json.loads(damaged[3])  # the w3c log's third chunk: one byte of its raw bytes flipped on the way
    chunk = third["data"]["chunks"][0]
    raw = bytearray(gzip.decompress(base64.b64decode(chunk["content"]["content"])))
    raw[100] ^= 0x01
    chunk["content"] = {"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(bytes(raw), mtime=0)).decode(),
                        "bytes": len(raw), "truncated": False, "sha256": chunk["sha256"]}
    damaged[3] = json.dumps(third, separators=(",", ":"))
    w3c_path = next(iter(expected_files))
    cases["flipped-byte"] = (damaged, {k: v for k, v in expected_files.items() if k != w3c_path}, [files[0][1]])
    for name, (lines, expected, refused) in cases.items():
        folder = FIXTURES / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stream.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / "expected.json").write_text(json.dumps({"files": expected, "refused": refused}, indent=1) + "\n",
                                              encoding="utf-8")


def _encode(component: str) -> str:
    from toolkit.rundir import host_dir_name

    return host_dir_name(component)


if __name__ == "__main__":
    write_fixtures()
