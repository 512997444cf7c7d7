"""Get-IisRawArtefact's C# core (IisFleet.Target.RawArtefactCollector) under Mono, through the lab harness:
chunk boundaries, the whole-file SHA-256 taken on the host, Have (already collected, resume mid-file, changed,
a grown log keeps its snapshot), a file growing while read, a file held open for writing, the byte cap, and a
failing file that does not stop the others. The bytes a test reassembles from the chunks must equal the file."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from toolkit.collectors import get_collector
from toolkit.contract import decode_blob, validate_envelope
from toolkit.lab.model.corehost import CoreHost, SimulatedHost
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles

CONFIG = "C/Windows/System32/inetsrv/config"
CONFIG_WIN = "C:\\Windows\\System32\\inetsrv\\config\\"
LOGS = "C/inetpub/logs/LogFiles/W3SVC1"
LOG_WIN = "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log"
CHUNK = 65536  # the smallest chunk the core accepts: small files cross many boundaries
APPHOST = ('<configuration><system.applicationHost><sites><site name="Shop" id="1"><application path="/">'
           '<virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\shop" /></application></site></sites>'
           '</system.applicationHost></configuration>')


def _tree(tmp_path: Path, log: bytes = b"", **configs: bytes) -> Path:
    root = tmp_path / "files"
    (root / CONFIG).mkdir(parents=True)
    (root / CONFIG / "applicationHost.config").write_text(APPHOST, "utf-8")
    for name, data in configs.items():
        (root / CONFIG / f"{name}.config").write_bytes(data)
    (root / "C/inetpub/shop/app").mkdir(parents=True)
    (root / "C/inetpub/shop/web.config").write_text("<configuration />", "utf-8")
    (root / "C/inetpub/shop/app/web.config").write_text("<configuration><appSettings /></configuration>", "utf-8")
    if log:
        (root / LOGS).mkdir(parents=True)
        (root / LOGS / "u_ex261124.log").write_bytes(log)
    return root


def _host(root: Path) -> SimulatedHost:
    return SimulatedHost("WEB07", "2026-11-24T21:00:00Z", mounts=PresentedFiles(root, timedelta(0)).mounts(),
                         variables=dict(HOST_VARIABLES))


def _log(lines: int) -> bytes:
    head = b"#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time s-ip cs-method cs-uri-stem sc-status\r\n"
    return head + b"".join(b"2026-11-24 %02d:%02d:%02d 10.0.0.5 GET /shop/%d 200\r\n" % (i // 3600 % 24, i // 60 % 60, i % 60, i)
                           for i in range(lines))


class Collected:
    """The parts of one answer, checked against the protocol, with each file reassembled from its chunks."""

    def __init__(self, outputs: list[str]) -> None:
        self.parts = [json.loads(text) for text in outputs]
        assert [p["part"]["index"] for p in self.parts] == list(range(len(self.parts)))
        assert [p["part"]["final"] for p in self.parts] == [False] * (len(self.parts) - 1) + [True]
        self.headers: dict[str, dict[str, Any]] = {}
        self.bytes: dict[str, bytearray] = {}
        self.chunks: dict[str, list[tuple[int, int]]] = {}
        self.errors = [e for p in self.parts for e in p["errors"]]
        current = None
        for part in self.parts[:-1]:
            data = part["data"]
            assert len(data) <= 1, f"a part holds one kind of data: {sorted(data)}"
            for header in data.get("artefacts", []):
                assert header["file_id"] not in self.headers
                self.headers[header["file_id"]] = header
                self.bytes[header["file_id"]] = bytearray()
                self.chunks[header["file_id"]] = []
                current = header["file_id"]
            for chunk in data.get("chunks", []):
                assert chunk["file_id"] == current, "chunks follow their own header, files never interleave"
                content = decode_blob(chunk["content"])
                assert len(content) == chunk["length"] and hashlib.sha256(content).hexdigest() == chunk["sha256"]
                header = self.headers[current]
                expected = header["start_offset"] + sum(length for _, length in self.chunks[current])
                assert chunk["offset"] == expected, "chunks come in offset order, without gaps"
                self.chunks[current].append((chunk["offset"], chunk["length"]))
                self.bytes[current] += content
        self.summary = self.parts[-1]["data"]["summary"]

    def by_path(self, host_path: str) -> dict[str, Any]:
        found = [h for h in self.headers.values() if h["host_path"].lower() == host_path.lower()]
        assert len(found) == 1, (host_path, sorted(h["host_path"] for h in self.headers.values()))
        return found[0]

    def content(self, host_path: str) -> bytes:
        return bytes(self.bytes[self.by_path(host_path)["file_id"]])


def _collect(core_host: CoreHost, root: Path, collector: str = "Get-IisRawArtefact", *, validate: bool = True,
             **parameters: Any) -> Collected:
    parameters.setdefault("ChunkBytes", CHUNK)
    parameters.setdefault("Since", "2026-11-23T21:00:00Z")
    answer = core_host.run(collector, _host(root), parameters)
    assert answer.error is None, answer.error
    if collector == "Get-IisRawArtefact" and validate:  # the real entry: the contract accepts the merged parts
        validate_envelope("\n".join(answer.outputs), collector=get_collector("Get-IisRawArtefact"), host="web07")
    return Collected(answer.outputs)


@pytest.mark.parametrize("size,chunks", [(0, 0), (CHUNK, 1), (CHUNK + 1, 2), (3 * CHUNK - 1, 3)])
def test_chunk_boundaries_and_the_host_side_hash(core_host: CoreHost, tmp_path: Path, size: int, chunks: int) -> None:
    data = bytes((i * 7 + i // 251) % 256 for i in range(size))
    got = _collect(core_host, _tree(tmp_path, redirection=data), Kinds=["config"])
    header = got.by_path(CONFIG_WIN + "redirection.config")
    assert header["size"] == size and header["status"] == "send" and header["start_offset"] == 0
    assert header["sha256"] == hashlib.sha256(data).hexdigest()  # computed on the host, before the first chunk
    assert header["chunk_bytes"] == CHUNK and header["kind"] == "config"
    assert header["name"] == "C/Windows/System32/inetsrv/config/redirection.config"
    assert len(got.chunks[header["file_id"]]) == chunks
    assert got.content(CONFIG_WIN + "redirection.config") == data
    assert header["modified_utc"].endswith("Z") and header["created_utc"] and header["accessed_utc"]


def test_what_is_selected_and_in_which_order(core_host: CoreHost, tmp_path: Path) -> None:
    root = _tree(tmp_path, log=_log(10), administration=b"<configuration />")
    (root / LOGS / "u_ex261101.log").write_bytes(_log(5).replace(b"2026-11-24", b"2026-11-01"))  # before the window
    got = _collect(core_host, root, Kinds=["w3c", "webconfig", "config"])
    order = [(h["kind"], h["host_path"]) for h in got.headers.values()]
    assert order == [("config", CONFIG_WIN + "applicationHost.config"), ("config", CONFIG_WIN + "administration.config"),
                     ("webconfig", "C:\\inetpub\\shop\\web.config"), ("webconfig", "C:\\inetpub\\shop\\app\\web.config"),
                     ("w3c", LOG_WIN)]
    assert got.summary == {"files": 5, "bytes_sent": sum(len(b) for b in got.bytes.values())}
    assert got.content(LOG_WIN) == (root / LOGS / "u_ex261124.log").read_bytes()


def test_an_unknown_kind_is_refused_by_name(core_host: CoreHost, tmp_path: Path) -> None:
    answer = core_host.run("Get-IisRawArtefact", _host(_tree(tmp_path)), {"Kinds": ["config", "registry"]})
    assert answer.error is not None and "'Kinds'" in answer.error and "registry" in answer.error


def _have(path: str, data: bytes, received: int) -> str:
    return f"{hashlib.sha256(data).hexdigest()}\t{len(data)}\t{received}\t{path}"


def test_have_already_collected_resume_mid_file_and_changed(core_host: CoreHost, tmp_path: Path) -> None:
    log = _log(9000)
    assert len(log) > 4 * CHUNK
    root = _tree(tmp_path, log=log, redirection=b"<configuration />", administration=b"<configuration />")
    admin = (root / CONFIG / "administration.config").read_bytes()
    have = [_have(LOG_WIN, log, 2 * CHUNK + 100),                                         # dropped in the third chunk
            _have(CONFIG_WIN + "redirection.config", b"<configuration />", 17),            # arrived whole
            _have(CONFIG_WIN + "administration.config", b"<configuration><old/>", 5)]      # edited since
    got = _collect(core_host, root, Kinds=["config", "w3c"], Have=have)
    redirection = got.by_path(CONFIG_WIN + "redirection.config")
    assert redirection["status"] == "already-collected" and got.chunks[redirection["file_id"]] == []
    assert redirection["start_offset"] == redirection["size"] == 17
    changed = got.by_path(CONFIG_WIN + "administration.config")
    assert changed["status"] == "changed" and changed["start_offset"] == 0
    assert changed["sha256"] == hashlib.sha256(admin).hexdigest() and got.content(CONFIG_WIN + "administration.config") == admin
    resumed = got.by_path(LOG_WIN)
    assert resumed["status"] == "send" and resumed["start_offset"] == 2 * CHUNK  # the last whole chunk is sent again
    assert resumed["sha256"] == hashlib.sha256(log).hexdigest()
    assert log[:2 * CHUNK] + got.content(LOG_WIN) == log
    assert got.summary["bytes_sent"] == len(log) - 2 * CHUNK + len(admin) + len(APPHOST)


def test_a_log_that_grew_since_the_interrupted_attempt_keeps_its_first_snapshot(core_host: CoreHost, tmp_path: Path) -> None:
    first = _log(3000)
    root = _tree(tmp_path, log=first)
    with (root / LOGS / "u_ex261124.log").open("ab") as log:  # IIS went on writing after the drop
        log.write(b"2026-11-24 20:00:00 10.0.0.9 GET /later 200\r\n" * 500)
    got = _collect(core_host, root, Kinds=["w3c"], Have=[_have(LOG_WIN, first, CHUNK)])
    header = got.by_path(LOG_WIN)
    assert header["size"] == len(first) and header["sha256"] == hashlib.sha256(first).hexdigest()
    assert first[:CHUNK] + got.content(LOG_WIN) == first


def test_a_file_growing_while_it_is_read_keeps_its_snapshot(core_host: CoreHost, tmp_path: Path) -> None:
    log = _log(4000)
    root = _tree(tmp_path, log=log)
    got = _collect(core_host, root, "Test-RawArtefact", Kinds=["w3c"], GrowPath=LOG_WIN, GrowBytes=70000)
    assert (root / LOGS / "u_ex261124.log").stat().st_size == len(log) + 70000  # it did grow, after the snapshot
    header = got.by_path(LOG_WIN)
    assert header["size"] == len(log) and header["sha256"] == hashlib.sha256(log).hexdigest()
    assert got.content(LOG_WIN) == log


def test_a_file_held_open_for_writing_is_read(core_host: CoreHost, tmp_path: Path) -> None:
    # Linux has no share modes, so this shows only that the core's own open does not ask for more than reading;
    # the Windows semantics of FileShare.ReadWrite|Delete are checked by review of Microsoft's documentation.
    log = _log(2000)
    root = _tree(tmp_path, log=log)
    with (root / LOGS / "u_ex261124.log").open("r+b") as writer:
        writer.seek(0, 2)
        got = _collect(core_host, root, Kinds=["w3c"])
    assert got.content(LOG_WIN) == log


def test_the_byte_cap_lists_what_it_leaves_out_and_smaller_files_still_go(core_host: CoreHost, tmp_path: Path) -> None:
    log = _log(5000)
    root = _tree(tmp_path, log=log, redirection=b"x" * 1000)
    (root / "C/inetpub/logs/LogFiles/W3SVC1/u_ex261123.log").write_bytes(_log(3).replace(b"2026-11-24 00", b"2026-11-23 23"))
    small = (root / LOGS / "u_ex261123.log").read_bytes()
    cap = len(APPHOST) + 1000 + 100 + len(small)
    got = _collect(core_host, root, Kinds=["config", "w3c"], MaxTotalBytes=cap)
    big = got.by_path(LOG_WIN)
    assert big["status"] == "error" and big["sha256"] is None and big["note"].startswith("cap")
    assert got.chunks[big["file_id"]] == [] and big["size"] == len(log)
    assert got.content("C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261123.log") == small  # older, smaller: it fits
    assert [e["category"] for e in got.errors if e["target"] == LOG_WIN] == ["cap"]
    assert got.summary["bytes_sent"] == len(APPHOST) + 1000 + len(small) <= cap
    # a file that arrived whole before costs nothing against the cap, however small the cap
    again = _collect(core_host, root, validate=False, Kinds=["config"], MaxTotalBytes=1,  # no chunk part at all
                     Have=[_have(CONFIG_WIN + "redirection.config", b"x" * 1000, 1000)])
    assert again.by_path(CONFIG_WIN + "redirection.config")["status"] == "already-collected"


def test_a_file_that_cannot_be_read_is_an_error_and_the_others_go(core_host: CoreHost, tmp_path: Path) -> None:
    root = _tree(tmp_path, log=_log(100), redirection=b"<configuration />")
    got = _collect(core_host, root, "Test-RawArtefact", Kinds=["config", "w3c"], DenyMarker="redirection")
    denied = [e for e in got.errors if e["target"] == CONFIG_WIN + "redirection.config"]
    assert [(e["probe"], e["category"]) for e in denied] == [("artefact", "access-denied")]
    assert all(h["host_path"] != CONFIG_WIN + "redirection.config" for h in got.headers.values())
    assert got.content(LOG_WIN) == (root / LOGS / "u_ex261124.log").read_bytes()
    assert got.summary["files"] == 2


def test_exports_go_through_a_temporary_folder_that_is_removed(core_host: CoreHost, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    security = tmp_path / "Security.evtx"
    security.write_bytes(b"ElfFile\x00" + bytes(range(256)) * 300)
    inf = tmp_path / "secedit.inf"
    inf.write_bytes("[Unicode]\r\nUnicode=yes\r\n".encode("utf-16"))
    before = set(Path("/tmp").glob("iisfleet-raw-*"))
    got = _collect(core_host, root, Kinds=["evtx", "secedit"], EventLogs=["Security", "System", "Setup"],
                   __EventLogFiles=[f"Security\t{security}", "System\t"], __SeceditFile=str(inf))
    header = got.by_path("EventLog:Security")
    assert header["name"] == "Security.evtx" and header["kind"] == "evtx" and header["owner"] is None
    assert "TimeCreated[@SystemTime>='2026-11-23T21:00:00.000Z' and @SystemTime<='2026-11-24T21:00:00.000Z']" in header["note"]
    assert got.content("EventLog:Security") == security.read_bytes()
    assert got.content("secedit:/export") == inf.read_bytes()
    assert {(e["target"], e["category"]) for e in got.errors} == {("EventLog:System", "access-denied"),
                                                                    ("EventLog:Setup", "not-found")}
    assert set(Path("/tmp").glob("iisfleet-raw-*")) == before  # every export and its folder are gone
