"""The DCE/RPC and NDR pieces of NetrShareGetInfo (toolkit/directory/srvsvc.py), without a server.

Answers under tests/fixtures/directory/srvsvc/ were captured from Samba 4.17's srvsvc (one PDU per line, hex);
the layouts built by hand below follow MS-RPCE 2.2 / C706 ch. 12 and MS-SRVS 2.2.4 / 3.1.4.10, field by field.
The fallback through levels 2 and 1 is what Windows does for a non-administrator (Samba answers level 502 to
anyone), so that exchange is played by a fake pipe at the protocol boundary: no real part here refuses it.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest

from toolkit.directory import srvsvc
from toolkit.directory.ldap import DirectoryError
from toolkit.directory.smb import ask_share_security, sd_to_sddl

CAPTURES = Path(__file__).parents[1] / "fixtures" / "directory" / "srvsvc"


def capture(name: str) -> bytes:
    return bytes.fromhex((CAPTURES / f"{name}.hex").read_text().split()[0])


def test_bind_offers_srvsvc_in_ndr20() -> None:
    pdu = srvsvc.bind(call_id=7)
    assert pdu[:4] == bytes([5, 0, 11, 3])  # v5.0, bind, first|last fragment
    assert pdu[4:8] == b"\x10\x00\x00\x00"  # little-endian, ASCII, IEEE floats
    assert struct.unpack_from("<HHI", pdu, 8) == (len(pdu), 0, 7) == (72, 0, 7)
    assert struct.unpack_from("<HHI", pdu, 16) == (4280, 4280, 0)  # max xmit/recv, new association group
    assert pdu[24] == 1  # one presentation context ...
    assert struct.unpack_from("<HB", pdu, 28) == (0, 1)  # ... id 0 with one transfer syntax
    assert pdu[32:48].hex() == "c84f324b7016d30112785a47bf6ee188"  # 4b324fc8-1670-01d3-1278-... little-endian
    assert struct.unpack_from("<HH", pdu, 48) == (3, 0)
    assert uuid.UUID(bytes_le=pdu[52:68]) == uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
    assert struct.unpack_from("<I", pdu, 68) == (2,)


def test_bind_ack_from_samba_is_accepted_and_a_nak_is_not() -> None:
    assert srvsvc.check_bind_ack(srvsvc.parse_pdu(capture("bind_ack"))) == 4280
    nak = bytes([5, 0, 13, 3]) + b"\x10\0\0\0" + struct.pack("<HHI", 18, 0, 1) + struct.pack("<H", 4)
    with pytest.raises(srvsvc.RpcError, match="protocol version not supported"):
        srvsvc.check_bind_ack(srvsvc.parse_pdu(nak))
    refused = bytearray(capture("bind_ack"))
    refused[44:48] = struct.pack("<HH", 2, 1)  # result: provider rejection, abstract syntax not supported
    with pytest.raises(srvsvc.RpcError, match="interface"):
        srvsvc.check_bind_ack(srvsvc.parse_pdu(bytes(refused)))


def test_request_stub_layout() -> None:
    stub = srvsvc.share_get_info_stub("fs01", "web", 502)
    # unique pointer to "\\\\fs01" (7 units with the NUL: 14 bytes, padded to 16), then "web" (4 units, 8 bytes)
    assert struct.unpack_from("<IIII", stub, 0) == (0x20000, 7, 0, 7)
    assert stub[16:30].decode("utf-16-le") == "\\\\fs01\0" and stub[30:32] == b"\0\0"
    assert struct.unpack_from("<III", stub, 32) == (4, 0, 4) and stub[44:52].decode("utf-16-le") == "web\0"
    assert struct.unpack_from("<I", stub, 52) == (502,) and len(stub) == 56
    odd = srvsvc.share_get_info_stub("fs", "a", 1)  # "\\fs\0" is 5 units = 10 bytes: padded to 12
    assert len(odd) == 4 + 12 + 12 + 12 + 4 + 4 and odd[26:28] == b"\0\0"
    [pdu] = srvsvc.request(3, 16, stub)
    assert pdu[2] == 0 and struct.unpack_from("<IHH", pdu, 16) == (len(stub), 0, 16) and pdu[24:] == stub


def test_large_requests_are_fragmented() -> None:
    stub = bytes(range(256)) * 40
    pdus = srvsvc.request(9, 16, stub, max_fragment=1024)
    assert [p[3] for p in (pdus[0], pdus[1], pdus[-1])] == [1, 0, 2]
    assert all(len(p) <= 1024 for p in pdus)
    assert b"".join(p[24:] for p in pdus) == stub
    assert struct.unpack_from("<I", pdus[1], 16)[0] == len(stub) - len(pdus[0]) + 24  # alloc hint: what is left


def test_level_502_answer_from_samba() -> None:
    pdu = srvsvc.parse_pdu(capture("samba-502-archive"))
    info = srvsvc.parse_share_get_info(srvsvc.response_stub([pdu], 2), 502)
    assert (info.status, info.name, info.type) == (0, "archive", 0)
    assert info.path.endswith("\\shares\\archive")
    sddl = sd_to_sddl(info.security_descriptor)
    assert sddl.startswith("D:(D;;0x1f01ff;;;S-1-5-21-")
    assert sddl.endswith(")(A;;0x1200a9;;;S-1-1-0)(A;;0x1f01ff;;;S-1-5-32-544)")


def test_not_disclosed_and_missing_share_from_samba() -> None:
    withheld = srvsvc.parse_share_get_info(srvsvc.response_stub([srvsvc.parse_pdu(capture(
        "samba-502-not-disclosed"))], 2), 502)
    assert withheld.status == 0 and withheld.name == "archive" and withheld.security_descriptor is None
    missing = srvsvc.parse_share_get_info(srvsvc.response_stub([srvsvc.parse_pdu(capture(
        "samba-502-no-such-share"))], 2), 502)
    assert missing.status == srvsvc.ERROR_INVALID_NAME and missing.status in srvsvc.NO_SUCH_SHARE


def test_fragmented_response_and_fault() -> None:
    whole = srvsvc.parse_pdu(capture("samba-502-archive"))
    stub = whole.body[8:]
    first = bytes([5, 0, 2, 1]) + b"\x10\0\0\0" + struct.pack("<HHI", 24 + 100, 0, 2) + \
        struct.pack("<IHBB", len(stub), 0, 0, 0) + stub[:100]
    last = bytes([5, 0, 2, 2]) + b"\x10\0\0\0" + struct.pack("<HHI", 24 + len(stub) - 100, 0, 2) + \
        struct.pack("<IHBB", len(stub) - 100, 0, 0, 0) + stub[100:]
    assert srvsvc.response_stub([srvsvc.parse_pdu(first), srvsvc.parse_pdu(last)], 2) == stub
    with pytest.raises(srvsvc.RpcError, match="before its last fragment"):
        srvsvc.response_stub([srvsvc.parse_pdu(first)], 2)
    fault = bytes([5, 0, 3, 3]) + b"\x10\0\0\0" + struct.pack("<HHI", 32, 0, 2) + struct.pack("<IHBBI", 0, 0, 0, 0,
                                                                                            0x1C010002) + b"\0" * 4
    with pytest.raises(srvsvc.RpcError, match="unknown operation") as caught:
        srvsvc.response_stub([srvsvc.parse_pdu(fault)], 2)
    assert caught.value.status == 0x1C010002


@pytest.mark.parametrize("data", [b"", b"\x05\x00\x02\x03", capture("samba-502-archive")[:40]])
def test_truncated_answers_are_errors_not_crashes(data: bytes) -> None:
    with pytest.raises(srvsvc.RpcError):
        srvsvc.parse_pdu(data)
    with pytest.raises(srvsvc.RpcError):
        srvsvc.parse_share_get_info(data[:11], 502)


def _response(call_id: int, stub: bytes) -> bytes:
    return bytes([5, 0, 2, 3]) + b"\x10\0\0\0" + struct.pack("<HHI", 24 + len(stub), 0, call_id) + \
        struct.pack("<IHBB", len(stub), 0, 0, 0) + stub


def _ndr_string(text: str) -> bytes:
    data = (text + "\0").encode("utf-16-le")
    out = struct.pack("<III", len(data) // 2, 0, len(data) // 2) + data
    return out + b"\0" * (-len(out) % 4)


class WindowsLikePipe:
    """Answers like Windows to a non-administrator: levels 2 and 502 refused with ERROR_ACCESS_DENIED, level 1
    (SHARE_INFO_1: netname, type, remark) given. Records the levels asked."""

    class connection:  # noqa: N801 - mimics smbprotocol's Open.connection
        max_read_size = 65536

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.levels: list[int] = []

    def write(self, data: bytes, offset: int = 0) -> int:
        pdu = srvsvc.parse_pdu(data)
        if pdu.ptype == srvsvc.PTYPE_BIND:
            self.pending.append(capture("bind_ack")[:12] + struct.pack("<I", pdu.call_id) + capture("bind_ack")[16:])
            return len(data)
        level = struct.unpack_from("<I", pdu.body, len(pdu.body) - 4)[0]
        self.levels.append(level)
        if level == 1:
            stub = struct.pack("<IIIII", 1, 0x20000, 0x20004, 0, 0x20008) + _ndr_string("web") + _ndr_string("")
            stub += struct.pack("<I", 0)
        else:
            stub = struct.pack("<III", level, 0, srvsvc.ERROR_ACCESS_DENIED)
        self.pending.append(_response(pdu.call_id, stub))
        return len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.pending.pop(0)


def test_falls_back_to_levels_2_and_1_when_502_is_refused() -> None:
    pipe = WindowsLikePipe()
    answer = ask_share_security(pipe, "fs01", "web", "SMB3 encryption")
    assert pipe.levels == [502, 2, 1]
    assert answer.sddl is None and answer.level == 1 and answer.share == "web"
    assert "refused level 502" in answer.note and "Administrators" in answer.note
    record = answer.record()
    assert record["share"] == "\\\\fs01\\web" and record["error"]["category"] == "access-denied"


def test_missing_share_is_not_found() -> None:
    class NoSuchShare(WindowsLikePipe):
        def write(self, data: bytes, offset: int = 0) -> int:
            pdu = srvsvc.parse_pdu(data)
            if pdu.ptype == srvsvc.PTYPE_BIND:
                return super().write(data)
            self.pending.append(_response(pdu.call_id, struct.pack("<III", 502, 0, srvsvc.NERR_NET_NAME_NOT_FOUND)))
            return len(data)

    with pytest.raises(DirectoryError) as caught:
        ask_share_security(NoSuchShare(), "fs01", "gone")
    assert caught.value.category == "not-found"


def test_a_pipe_that_breaks_is_a_categorised_error() -> None:
    """An SMB failure while talking on the pipe (here: the server closes it after the bind) becomes a
    DirectoryError the run records for that share, not an exception that ends the directory step."""
    from toolkit.directory.smb import SmbReader

    class Closing(WindowsLikePipe):
        def read(self, offset: int, length: int) -> bytes:
            if not self.levels:
                return super().read(offset, length)
            raise OSError("STATUS_PIPE_BROKEN")

    class Reader(SmbReader):
        def _session(self, server):
            return None, None, {}

        def _pipe(self, unc, name):
            import contextlib

            return contextlib.nullcontext(Closing())

    with pytest.raises(DirectoryError) as caught:
        Reader(None, None, addresses={}).share_security("fs01", "web")
    assert caught.value.category in ("protocol", "connect") and "STATUS_PIPE_BROKEN" in str(caught.value)
