"""Write an .evtx file from event dicts: what the lab's hosts "export" for Get-IisRawArtefact, and sample
files for the parser tests (written here from the published format description, not copied).

The layout follows the published EVTX format: a 4096-byte file header ("ElfFile"), 64 KiB chunks
("ElfChnk") with CRC32 checksums, event records ("**") whose payload is Binary XML written without
templates (open/close element tokens, attributes, UTF-16 text values). A record never spans chunks: a
chunk is closed when the next record does not fit, and the file header counts the chunks.
"""
from __future__ import annotations

import struct
import zlib
from datetime import datetime, timezone


def _name_hash(name: str) -> int:
    h = 0
    for ch in name:
        h = (h * 65599 + ord(ch)) & 0xFFFFFFFF
    return h & 0xFFFF


def _name(out: bytearray, chunk_offset: int, name: str) -> None:
    """Name offset pointing right behind itself, then the inline name structure."""
    here = chunk_offset + len(out) + 4
    out += struct.pack("<I", here)
    out += struct.pack("<IHH", 0, _name_hash(name), len(name)) + name.encode("utf-16-le") + b"\x00\x00"


def _text(value: str) -> bytes:
    return b"\x05\x01" + struct.pack("<H", len(value)) + value.encode("utf-16-le")


def _element(out: bytearray, chunk_offset: int, tag: str, attrs: list[tuple[str, str]], content) -> None:
    out.append(0x41 if attrs else 0x01)
    size_at = len(out)
    out += b"\x00\x00\x00\x00"  # data size, patched below
    start = len(out)
    _name(out, chunk_offset, tag)
    if attrs:
        list_at = len(out)
        out += b"\x00\x00\x00\x00"
        list_start = len(out)
        for i, (key, value) in enumerate(attrs):
            out.append(0x46 if i < len(attrs) - 1 else 0x06)
            _name(out, chunk_offset, key)
            out += _text(value)
        struct.pack_into("<I", out, list_at, len(out) - list_start)
    if content is None:
        out.append(0x03)  # close empty element
    else:
        out.append(0x02)  # close start element
        if isinstance(content, str):
            out += _text(content)
        else:
            for child in content:
                _element(out, chunk_offset, *child)
        out.append(0x04)  # end element
    struct.pack_into("<I", out, size_at, len(out) - start)


def _filetime(iso: str) -> int:
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return int((when - datetime(1601, 1, 1, tzinfo=timezone.utc)).total_seconds() * 10_000_000)


def event_tree(event: dict):
    system = [
        ("Provider", [("Name", event["provider"])], None),
        ("EventID", [], str(event["id"])),
        ("Level", [], "0"),
        ("Task", [], "12544"),
        ("Keywords", [], "0x8010000000000000"),
        ("TimeCreated", [("SystemTime", event["time"])], None),
        ("EventRecordID", [], str(event["record_id"])),
        ("Channel", [], event["channel"]),
        ("Computer", [], event["computer"]),
    ]
    data = [("Data", [("Name", k)], v) for k, v in event["data"]]
    return ("Event", [("xmlns", "http://schemas.microsoft.com/win/2004/08/events/event")],
            [("System", [], system), ("EventData", [], data)])


CHUNK_BYTES = 65536
CHUNK_HEADER_BYTES = 512


def _record(event: dict, offset: int) -> bytes:
    # fragment header, the element tree (names inline: their offsets are chunk offsets), end of fragment
    tree = bytearray()
    _element(tree, offset + 24 + 4, *event_tree(event))
    body = b"\x0f\x01\x01\x00" + tree + b"\x00"
    size = 24 + len(body) + 4
    return struct.pack("<4sIQQ", b"**\x00\x00", size, event["record_id"], _filetime(event["time"])) + body + \
        struct.pack("<I", size)


def _close_chunk(chunk: bytearray, first_id: int, last_id: int, last_offset: int, free: int) -> bytes:
    header = struct.pack("<8sQQQQIII", b"ElfChnk\x00", first_id, last_id, first_id, last_id, 128, last_offset, free)
    chunk[0:len(header)] = header
    struct.pack_into("<I", chunk, 52, zlib.crc32(bytes(chunk[CHUNK_HEADER_BYTES:free])) & 0xFFFFFFFF)
    struct.pack_into("<I", chunk, 124, zlib.crc32(bytes(chunk[0:120]) + bytes(chunk[128:CHUNK_HEADER_BYTES])) & 0xFFFFFFFF)
    return bytes(chunk)


def evtx_bytes(events: list[dict]) -> bytes:
    """The whole file; events need ``provider, id, time, record_id, channel, computer, data`` (pairs)."""
    chunks: list[bytes] = []
    chunk, offset, last_offset, first_id = bytearray(CHUNK_BYTES), CHUNK_HEADER_BYTES, CHUNK_HEADER_BYTES, None
    last_id = 0
    for event in events:
        record = _record(event, offset)
        if offset + len(record) > CHUNK_BYTES and first_id is not None:
            chunks.append(_close_chunk(chunk, first_id, last_id, last_offset, offset))
            chunk, offset, first_id = bytearray(CHUNK_BYTES), CHUNK_HEADER_BYTES, None
            record = _record(event, offset)
        if offset + len(record) > CHUNK_BYTES:
            raise ValueError(f"event record {event['record_id']} is larger than a chunk")
        chunk[offset:offset + len(record)] = record
        first_id = event["record_id"] if first_id is None else first_id
        last_id, last_offset = event["record_id"], offset
        offset += len(record)
    if first_id is not None:
        chunks.append(_close_chunk(chunk, first_id, last_id, last_offset, offset))
    file_header = bytearray(4096)
    struct.pack_into("<8sQQQIHHHH", file_header, 0, b"ElfFile\x00", 0, max(0, len(chunks) - 1), last_id + 1, 128, 2, 3,
                     4096, len(chunks))
    struct.pack_into("<I", file_header, 124, zlib.crc32(bytes(file_header[:120])) & 0xFFFFFFFF)
    return bytes(file_header) + b"".join(chunks)


def write_evtx(path: str, events: list[dict]) -> None:
    with open(path, "wb") as handle:
        handle.write(evtx_bytes(events))
