"""Effective access to UNC content is what both the share's permissions and the NTFS ACL allow."""

from __future__ import annotations

import pytest

from toolkit.diagnose.security import unc_access
from toolkit.parsers.sddl import parse_sddl

USER = "S-1-5-21-1-2-3-1111"
GROUPS = [{"name": "CONTOSO\\Web", "sid": "S-1-5-21-1-2-3-2000", "members": [{"name": "CONTOSO\\svc", "sid": USER}]}]


@pytest.mark.parametrize("share, ntfs, read, write, read_by, write_by", [
    # a share that grants only Read to Everyone still refuses writing, whatever NTFS allows
    ("D:(A;;0x1200a9;;;WD)", "D:(A;OICI;FA;;;S-1-5-21-1-2-3-2000)", True, False, "", "share"),
    # a share-level deny refuses even though NTFS allows (the deny comes first, as Windows orders them)
    (f"D:(D;;FA;;;{USER})(A;;FA;;;WD)", "D:(A;OICI;FA;;;WD)", False, False, "share", "share"),
    # a share that does not name the identity at all refuses too
    ("D:(A;;FA;;;BA)", "D:(A;OICI;FA;;;WD)", False, False, "share", "share"),
    # Change at share level, read-only NTFS through a nested group: NTFS decides the write
    ("D:(A;;0x1301bf;;;WD)", "D:(A;OICI;0x1200a9;;;S-1-5-21-1-2-3-2000)", True, False, "", "NTFS"),
    # both refuse: both are named
    ("D:(A;;FA;;;BA)", "D:(A;OICI;FA;;;BA)", False, False, "share and NTFS", "share and NTFS"),
    # an inherit-only grant does not apply to the folder itself
    ("D:(A;;FA;;;WD)", "D:(A;OICIIO;FA;;;WD)(A;;0x1200a9;;;WD)", True, False, "", "NTFS"),
])
def test_intersection(share, ntfs, read, write, read_by, write_by) -> None:
    access = unc_access(parse_sddl(ntfs), parse_sddl(share), "CONTOSO\\svc", GROUPS)
    assert (access.read, access.write, access.read_decided_by, access.write_decided_by) == \
        (read, write, read_by, write_by)


def test_nothing_collected_judges_nothing() -> None:
    access = unc_access(None, None, "CONTOSO\\svc", GROUPS)
    assert access.read is None and access.write is None and access.read_decided_by == ""
