"""Binary security descriptors → SDDL (toolkit/directory/smb.py), including ACL revision 3 as smbcacls writes."""

from __future__ import annotations

import struct

import pytest

from toolkit.directory.smb import parse_unc, sd_to_sddl
from toolkit.parsers.sddl import parse_sddl


def sid(text: str) -> bytes:
    parts = text.split("-")
    rev, auth, subs = int(parts[1]), int(parts[2]), [int(p) for p in parts[3:]]
    return bytes([rev, len(subs)]) + auth.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)


def ace(kind: int, flags: int, mask: int, who: str) -> bytes:
    body = struct.pack("<I", mask) + sid(who)
    return struct.pack("<BBH", kind, flags, 4 + len(body)) + body


def descriptor(aces: list[bytes], *, acl_revision: int = 2, control: int = 0x8004 | 0x400) -> bytes:
    owner, group = sid("S-1-5-32-544"), sid("S-1-5-21-1-2-3-513")
    acl_body = b"".join(aces)
    acl = struct.pack("<BBHHH", acl_revision, 0, 8 + len(acl_body), len(aces), 0) + acl_body
    o_owner = 20
    o_group = o_owner + len(owner)
    o_dacl = o_group + len(group)
    return struct.pack("<BBHIIII", 1, 0, control, o_owner, o_group, 0, o_dacl) + owner + group + acl


@pytest.mark.parametrize("revision", [2, 3, 4])
def test_descriptor_to_sddl_any_acl_revision(revision: int) -> None:
    data = descriptor([ace(1, 0x3, 0x1F01FF, "S-1-5-21-1-2-3-1105"), ace(0, 0x13, 0x1200A9, "S-1-5-32-545")],
                      acl_revision=revision)
    text = sd_to_sddl(data)
    assert text == ("O:S-1-5-32-544G:S-1-5-21-1-2-3-513D:AI(D;OICI;0x1f01ff;;;S-1-5-21-1-2-3-1105)"
                    "(A;OICIID;0x1200a9;;;S-1-5-32-545)")
    parsed = parse_sddl(text)  # the rest of iisfleet reads it
    assert [a.trustee_sid for a in parsed.dacl] == ["S-1-5-21-1-2-3-1105", "S-1-5-32-545"]


def test_protected_and_missing_dacl() -> None:
    assert sd_to_sddl(descriptor([], control=0x8004 | 0x1000)).endswith("D:P")
    assert "D:" not in sd_to_sddl(descriptor([], control=0x8000))


@pytest.mark.parametrize("cut", [10, 30, 60])
def test_truncated_descriptor_is_a_value_error(cut: int) -> None:
    data = descriptor([ace(0, 0, 0x1F01FF, "S-1-5-21-1-2-3-1105")])
    with pytest.raises(ValueError):
        sd_to_sddl(data[:cut])


@pytest.mark.parametrize("text,expected", [
    ("\\\\fs01\\content\\reports", ("fs01", "content", "reports")),
    ("\\\\fs01.contoso.com\\web$", ("fs01.contoso.com", "web$", "")),
    ("//fs01/media/a/b", ("fs01", "media", "a\\b")),
    ("C:\\inetpub\\wwwroot", None),
    ("\\\\?\\C:\\x", None),
    ("\\\\fs01", None),
])
def test_parse_unc(text: str, expected) -> None:
    unc = parse_unc(text)
    assert (unc.server, unc.share, unc.path) == expected if expected else unc is None
