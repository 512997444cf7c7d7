"""Just enough DCE/RPC to ask a file server for a share's permissions: NetrShareGetInfo over ``\\pipe\\srvsvc``.

smbprotocol speaks SMB2/3 but no DCE/RPC, and the share-level security descriptor (the "Share
Permissions" tab) is only reachable through the Server Service RPC interface. This module encodes and
decodes the few connection-oriented PDUs and NDR 2.0 structures that takes; the SMB side (opening the
pipe on IPC$, writing and reading its messages) lives in :mod:`toolkit.directory.smb`. Pure functions
over bytes, so the wire format is unit-tested without a server. Written from the published facts
(C706 chapter 12 and 14, MS-RPCE 2.2, MS-SRVS 3.1.4.10 and 2.2.4), no code copied.

Facts used:

* PDU header (16 bytes): version 5.0, packet type, flags (first/last fragment), data representation
  ``10 00 00 00`` (little-endian, ASCII, IEEE), fragment length, auth length, call id.
* bind (type 11) offers one presentation context: the abstract syntax SRVSVC
  ``4b324fc8-1670-01d3-1278-5a47bf6ee188`` v3.0 with the NDR 2.0 transfer syntax
  ``8a885d04-1ceb-11c9-9fe8-08002b104860`` v2; bind_ack (12) carries a result list whose first
  result 0 means accepted; bind_nak (13) carries a reason.
* request (0): alloc hint, context id, opnum, stub; response (2): alloc hint, context id, cancel
  count, stub (split over fragments, the last one flagged); fault (3): an NCA status code.
* UUIDs travel with their first three fields little-endian (``uuid.UUID.bytes_le``).
* NDR: primitives aligned to their size; a ``[string] wchar_t*`` is a conformant varying array
  (max count, offset, actual count, UTF-16LE units including the terminator); a unique pointer is a
  4-byte referent id (0 for NULL) whose pointee follows the enclosing structure (deferred), in member
  order; a non-encapsulated union is its 4-byte discriminant followed by the arm.
* NetrShareGetInfo is opnum 16: ``[in, unique, string] ServerName, [in, string] NetName, [in] Level,
  [out, switch_is(Level)] InfoStruct``, then the NET_API_STATUS. Levels 2, 502 and 503 need
  Administrators, Server Operators or Power Users on the server (0 and 1 do not); level 502's
  ``shi502_security_descriptor`` is a self-relative SECURITY_DESCRIPTOR of ``shi502_reserved`` bytes,
  NULL when the share has none (everyone then has full access at share level).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

SRVSVC_UUID = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188")
SRVSVC_VERSION = (3, 0)
NDR20_UUID = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
NDR20_VERSION = 2
OPNUM_NETR_SHARE_GET_INFO = 16

PTYPE_REQUEST, PTYPE_RESPONSE, PTYPE_FAULT, PTYPE_BIND, PTYPE_BIND_ACK, PTYPE_BIND_NAK = 0, 2, 3, 11, 12, 13
PFC_FIRST_FRAG, PFC_LAST_FRAG = 0x01, 0x02
DATA_REPRESENTATION = b"\x10\x00\x00\x00"
HEADER = struct.Struct("<BBBB4sHHI")
MAX_FRAGMENT = 4280  # what Windows clients offer; every server accepts it

#: NET_API_STATUS values a caller can act on (MS-ERREF 2.2)
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_LEVEL = 124
NERR_NET_NAME_NOT_FOUND = 2310
ERROR_INVALID_NAME = 123
#: Windows answers NERR_NetNameNotFound for a share it does not have; Samba 4.17 answers ERROR_INVALID_NAME
NO_SUCH_SHARE = (NERR_NET_NAME_NOT_FOUND, ERROR_INVALID_NAME)
STATUS_TEXT = {ERROR_ACCESS_DENIED: "access denied", ERROR_INVALID_LEVEL: "invalid level",
               NERR_NET_NAME_NOT_FOUND: "no such share",
               ERROR_INVALID_NAME: "no such share (invalid name)", 87: "invalid parameter"}
#: the NCA status codes a fault can carry that say something to an admin (C706 appendix E, MS-RPCE 3.1.1.5.5)
FAULT_TEXT = {0x00000005: "access denied", 0x1C010002: "unknown operation (nca_s_op_rng_error)",
              0x1C010003: "unknown interface (nca_s_unk_if)", 0x000006F7: "malformed request (rpc_x_bad_stub_data)",
              0x1C00001C: "server refused the call (nca_s_fault_remote_no_memory)"}


class RpcError(Exception):
    """A DCE/RPC failure: the bind was refused, the call faulted, or the server's answer is malformed.
    ``status`` is the NCA/Win32 code when the server gave one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pdu:
    ptype: int
    flags: int
    call_id: int
    body: bytes  # everything after the 16-byte header, up to the fragment length

    @property
    def last(self) -> bool:
        return bool(self.flags & PFC_LAST_FRAG)


def _pdu(ptype: int, call_id: int, body: bytes, flags: int = PFC_FIRST_FRAG | PFC_LAST_FRAG) -> bytes:
    return HEADER.pack(5, 0, ptype, flags, DATA_REPRESENTATION, HEADER.size + len(body), 0, call_id) + body


def parse_pdu(data: bytes) -> Pdu:
    if len(data) < HEADER.size:
        raise RpcError(f"DCE/RPC answer of {len(data)} bytes is shorter than its header")
    version, minor, ptype, flags, drep, frag_length, _auth_length, call_id = HEADER.unpack_from(data)
    if version != 5 or minor not in (0, 1):
        raise RpcError(f"not a DCE/RPC connection-oriented PDU (version {version}.{minor})")
    if drep[0] & 0xF0 != 0x10:
        raise RpcError("the server answered in big-endian data representation, which this reader does not decode")
    if frag_length < HEADER.size or frag_length > len(data):
        raise RpcError(f"DCE/RPC fragment length {frag_length} does not match the {len(data)} bytes read")
    return Pdu(ptype, flags, call_id, bytes(data[HEADER.size:frag_length]))


def bind(call_id: int = 1, max_fragment: int = MAX_FRAGMENT) -> bytes:
    """A bind PDU offering SRVSVC v3.0 in NDR 2.0 as presentation context 0."""
    context = (struct.pack("<HBB", 0, 1, 0)
               + SRVSVC_UUID.bytes_le + struct.pack("<HH", *SRVSVC_VERSION)
               + NDR20_UUID.bytes_le + struct.pack("<I", NDR20_VERSION))
    body = struct.pack("<HHI", max_fragment, max_fragment, 0) + struct.pack("<BBH", 1, 0, 0) + context
    return _pdu(PTYPE_BIND, call_id, body)


_BIND_NAK_REASONS = {0: "not specified", 1: "temporary congestion", 2: "local limit exceeded",
                     4: "protocol version not supported", 8: "authentication type not recognised",
                     9: "invalid checksum"}
_RESULT_REASONS = {1: "abstract syntax (the interface) not supported", 2: "transfer syntax (NDR) not supported"}


def check_bind_ack(pdu: Pdu) -> int:
    """The negotiated maximum fragment the server sends; raises RpcError when the bind was not accepted."""
    if pdu.ptype == PTYPE_BIND_NAK:
        reason = struct.unpack_from("<H", pdu.body)[0] if len(pdu.body) >= 2 else 0
        raise RpcError(f"the server refused the bind: {_BIND_NAK_REASONS.get(reason, reason)}", reason)
    if pdu.ptype != PTYPE_BIND_ACK or len(pdu.body) < 10:
        raise RpcError(f"unexpected answer to the bind (packet type {pdu.ptype})")
    max_xmit, _max_recv, _group, address_length = struct.unpack_from("<HHIH", pdu.body)
    at = 10 + address_length
    at += (-(at + HEADER.size)) % 4  # the result list is 4-aligned relative to the PDU's start
    if at + 4 + 24 > len(pdu.body):
        raise RpcError("bind_ack without a result list")
    count = pdu.body[at]
    result, reason = struct.unpack_from("<HH", pdu.body, at + 4)
    if count < 1 or result != 0:
        raise RpcError(f"the server did not accept SRVSVC over NDR: {_RESULT_REASONS.get(reason, reason)}", reason)
    return max_xmit


def request(call_id: int, opnum: int, stub: bytes, max_fragment: int = MAX_FRAGMENT) -> list[bytes]:
    """The request PDUs carrying ``stub`` (split into fragments no larger than ``max_fragment``)."""
    room = max(8, (max_fragment - HEADER.size - 8) & ~7)
    pieces = [stub[i:i + room] for i in range(0, len(stub), room)] or [b""]
    out = []
    for index, piece in enumerate(pieces):
        flags = (PFC_FIRST_FRAG if index == 0 else 0) | (PFC_LAST_FRAG if index == len(pieces) - 1 else 0)
        body = struct.pack("<IHH", len(stub) - index * room, 0, opnum) + piece
        out.append(_pdu(PTYPE_REQUEST, call_id, body, flags))
    return out


def response_stub(pdus: list[Pdu], call_id: int) -> bytes:
    """The stub data of a (possibly fragmented) response; raises RpcError for a fault."""
    stub = b""
    for pdu in pdus:
        if pdu.call_id != call_id:
            raise RpcError(f"answer for call {pdu.call_id} while waiting for call {call_id}")
        if pdu.ptype == PTYPE_FAULT:
            status = struct.unpack_from("<I", pdu.body, 8)[0] if len(pdu.body) >= 12 else 0
            raise RpcError(f"the call faulted: {FAULT_TEXT.get(status, f'status 0x{status:08x}')}", status)
        if pdu.ptype != PTYPE_RESPONSE or len(pdu.body) < 8:
            raise RpcError(f"unexpected packet type {pdu.ptype} in a response")
        stub += pdu.body[8:]
    if not pdus or not pdus[-1].last:
        raise RpcError("the response ended before its last fragment")
    return stub


# --- NDR 2.0 -------------------------------------------------------------------------------------------------
def _string(text: str) -> bytes:
    """A conformant varying UTF-16 string with its terminator, padded to 4 bytes."""
    data = (text + "\0").encode("utf-16-le")
    units = len(data) // 2
    out = struct.pack("<III", units, 0, units) + data
    return out + b"\0" * (-len(out) % 4)


def share_get_info_stub(server: str, share: str, level: int) -> bytes:
    """NetrShareGetInfo's [in] parameters: ServerName (a unique pointer, so a referent id first), NetName, Level."""
    return struct.pack("<I", 0x00020000) + _string(f"\\\\{server}") + _string(share) + struct.pack("<I", level)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def align(self, size: int) -> None:
        self.at += -self.at % size

    def u32(self) -> int:
        self.align(4)
        if self.at + 4 > len(self.data):
            raise RpcError("NetrShareGetInfo answer truncated")
        value = struct.unpack_from("<I", self.data, self.at)[0]
        self.at += 4
        return value

    def raw(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise RpcError("NetrShareGetInfo answer truncated")
        value = self.data[self.at:self.at + size]
        self.at += size
        return value

    def string(self) -> str:
        maximum, offset, actual = self.u32(), self.u32(), self.u32()
        if offset != 0 or actual > maximum or actual > 32768:
            raise RpcError("NetrShareGetInfo answer holds an inconsistent string")
        return self.raw(actual * 2).decode("utf-16-le", errors="replace").rstrip("\0")

    def byte_array(self, declared: int) -> bytes:
        count = self.u32()
        if count != declared or count > 1 << 20:
            raise RpcError(f"security descriptor of {count} bytes where {declared} were announced")
        return self.raw(count)


#: the members of SHARE_INFO_1, _2 and _502_I in wire order: "s" a string pointer, "d" a DWORD,
#: "r" shi502_reserved (the descriptor's size), "b" the descriptor pointer
_LAYOUT = {1: ("netname:s", "type:d", "remark:s"),
           2: ("netname:s", "type:d", "remark:s", "permissions:d", "max_uses:d", "current_uses:d", "path:s",
               "password:s"),
           502: ("netname:s", "type:d", "remark:s", "permissions:d", "max_uses:d", "current_uses:d", "path:s",
                 "password:s", "sd_size:r", "sd:b")}


@dataclass(frozen=True)
class ShareInfo:
    level: int
    status: int  # NET_API_STATUS; 0 is success, then the fields below are filled
    name: str = ""
    type: int = 0
    remark: str = ""
    path: str = ""
    #: the share's self-relative SECURITY_DESCRIPTOR (level 502 only); None when the share has none
    security_descriptor: bytes | None = None

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, f"error {self.status}")


def parse_share_get_info(stub: bytes, level: int) -> ShareInfo:
    """NetrShareGetInfo's [out] InfoStruct and return status, for level 1, 2 or 502."""
    if level not in _LAYOUT:
        raise ValueError(f"level {level} is not decoded here")
    reader = _Reader(stub)
    switch = reader.u32()
    if switch != level:
        raise RpcError(f"answer for level {switch} to a level {level} question")
    values: dict[str, object] = {}
    if reader.u32():  # referent of the SHARE_INFO_<level> pointer; 0 when the call failed
        pointers = []
        for member in _LAYOUT[level]:
            name, kind = member.split(":")
            value = reader.u32()
            if kind in "sb":
                if value:
                    pointers.append((name, kind))
            else:
                values[name] = value
        for name, kind in pointers:  # deferred pointees, in member order
            values[name] = reader.string() if kind == "s" else reader.byte_array(int(values.get("sd_size", 0)))
    status = reader.u32()
    return ShareInfo(level, status, name=str(values.get("netname", "")), type=int(values.get("type", 0)),
                     remark=str(values.get("remark", "")), path=str(values.get("path", "")),
                     security_descriptor=values.get("sd") if isinstance(values.get("sd"), bytes) else None)


__all__ = ["ERROR_ACCESS_DENIED", "OPNUM_NETR_SHARE_GET_INFO", "Pdu", "RpcError", "ShareInfo", "bind",
           "check_bind_ack", "parse_pdu", "parse_share_get_info", "request", "response_stub",
           "share_get_info_stub"]
