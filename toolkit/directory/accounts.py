"""What an Active Directory account's attributes say about whether it can log on (pure functions).

userAccountControl carries what an administrator set (ACCOUNTDISABLE 0x2, DONT_EXPIRE_PASSWORD 0x10000);
the constructed msDS-User-Account-Control-Computed carries what the DC works out at read time (LOCKOUT 0x10,
PASSWORD_EXPIRED 0x800000), which userAccountControl itself no longer reports on current DCs.
accountExpires and pwdLastSet are FILETIMEs (100 ns since 1601-01-01 UTC); accountExpires 0 or
0x7FFFFFFFFFFFFFFF means never; pwdLastSet 0 means "must change password at next logon".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_PASSWORD_EXPIRED = 0x800000
NEVER = 0x7FFFFFFFFFFFFFFF
#: 9999-12-31: how some LDAP libraries hand back "never" once they have turned it into a date
NEVER_AS_DATE = 2650467743990000000
_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)

#: msDS-SupportedEncryptionTypes bits
ENCTYPES = {0x1: "DES-CBC-CRC", 0x2: "DES-CBC-MD5", 0x4: "RC4-HMAC", 0x8: "AES128", 0x10: "AES256"}

#: The attributes read for every account
STATE_ATTRIBUTES = ("sAMAccountName", "objectSid", "objectClass", "userAccountControl",
                    "msDS-User-Account-Control-Computed", "lockoutTime", "accountExpires", "pwdLastSet",
                    "badPwdCount", "msDS-SupportedEncryptionTypes", "servicePrincipalName", "userPrincipalName",
                    "dNSHostName")


def filetime(value: int | None) -> dt.datetime | None:
    if not value or value >= NEVER_AS_DATE or value < 0:
        return None
    try:
        return _EPOCH + dt.timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def enctype_names(value: int | None) -> list[str]:
    return [name for bit, name in ENCTYPES.items() if (value or 0) & bit]


@dataclass(frozen=True)
class AccountState:
    sam: str
    dn: str
    sid: str = ""
    uac: int = 0
    computed: int = 0
    lockout_time: int = 0
    account_expires: int = 0
    pwd_last_set: int | None = None
    bad_pwd_count: int = 0
    enctypes: int | None = None
    is_computer: bool = False

    @property
    def disabled(self) -> bool:
        return bool(self.uac & UF_ACCOUNTDISABLE)

    @property
    def locked(self) -> bool:
        return bool(self.computed & UF_LOCKOUT)

    @property
    def password_expired(self) -> bool:
        return bool(self.computed & UF_PASSWORD_EXPIRED)

    @property
    def must_change_password(self) -> bool:
        return self.pwd_last_set == 0 and not (self.uac & UF_DONT_EXPIRE_PASSWD)

    def expired(self, now: dt.datetime) -> bool:
        when = filetime(self.account_expires)
        return when is not None and when <= now

    def problems(self, now: dt.datetime) -> list[str]:
        """Why this account cannot log on, in the words findings use ("disabled", "locked out", ...)."""
        out = []
        if self.disabled:
            out.append("disabled")
        if self.locked:
            out.append("locked out")
        if self.expired(now):
            out.append("expired")
        if self.password_expired:
            out.append("password expired")
        if self.must_change_password:
            out.append("must change password")
        return out

    def summary(self, now: dt.datetime) -> str:
        """One evidence line: the attributes as read and what they mean."""
        expires = filetime(self.account_expires)
        parts = [f"userAccountControl=0x{self.uac:x}", f"msDS-User-Account-Control-Computed=0x{self.computed:x}"]
        if self.lockout_time:
            parts.append(f"lockoutTime={_iso(filetime(self.lockout_time))}")
        parts.append(f"accountExpires={_iso(expires) if expires else 'never'}")
        parts.append(f"pwdLastSet={'0 (must change)' if self.pwd_last_set == 0 else _iso(filetime(self.pwd_last_set))}")
        if self.enctypes is not None:
            parts.append(f"msDS-SupportedEncryptionTypes=0x{self.enctypes:x} ({','.join(enctype_names(self.enctypes)) or 'none'})")
        state = ", ".join(self.problems(now)) or "usable"
        return f"{self.sam}: {state} ({'; '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {"sam": self.sam, "dn": self.dn, "sid": self.sid, "uac": self.uac, "computed": self.computed,
                "lockout_time": self.lockout_time, "account_expires": self.account_expires,
                "pwd_last_set": self.pwd_last_set, "bad_pwd_count": self.bad_pwd_count,
                "enctypes": self.enctypes, "is_computer": self.is_computer}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AccountState:
        def num(key: str, default: int | None = 0) -> int | None:
            value = d.get(key)
            return int(value) if isinstance(value, int) and not isinstance(value, bool) else default
        return cls(sam=str(d.get("sam") or ""), dn=str(d.get("dn") or ""), sid=str(d.get("sid") or ""),
                   uac=num("uac") or 0, computed=num("computed") or 0, lockout_time=num("lockout_time") or 0,
                   account_expires=num("account_expires") or 0, pwd_last_set=num("pwd_last_set", None),
                   bad_pwd_count=num("bad_pwd_count") or 0, enctypes=num("enctypes", None),
                   is_computer=bool(d.get("is_computer")))


def _iso(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "-"
