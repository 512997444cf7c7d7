"""Which status codes point to which cause (sc-win32-status values and 4625 Status/SubStatus).

Values are unsigned 32-bit integers, as IIS writes ``sc-win32-status``; 4625 codes are compared as
hex strings after normalising (``0xc000006d`` → ``0xC000006D``).
"""

from __future__ import annotations

# sc-win32-status
ERROR_ACCESS_DENIED = 5
ERROR_LOGON_FAILURE = 1326
ERROR_ACCOUNT_RESTRICTION = 1327
ERROR_PASSWORD_EXPIRED = 1330
ERROR_ACCOUNT_DISABLED = 1331
ERROR_LOGON_TYPE_NOT_GRANTED = 1385
ERROR_ACCOUNT_EXPIRED = 1793
ERROR_PASSWORD_MUST_CHANGE = 1907
ERROR_ACCOUNT_LOCKED_OUT = 1909
SEC_E_UNSUPPORTED_FUNCTION = 0x80090302
SEC_E_SECPKG_NOT_FOUND = 0x80090305
SEC_E_INVALID_TOKEN = 0x80090308
SEC_E_LOGON_DENIED = 0x8009030C
SEC_E_UNKNOWN_CREDENTIALS = 0x8009030D
SEC_E_NO_CREDENTIALS = 0x8009030E
SEC_E_NO_AUTHENTICATING_AUTHORITY = 0x80090311
SEC_E_WRONG_PRINCIPAL = 0x80090322
SEC_E_TIME_SKEW = 0x80090324
SEC_E_BAD_BINDINGS = 0x80090346

# NTSTATUS (also seen as sc-win32-status from some modules)
STATUS_NO_SUCH_USER = 0xC0000064
STATUS_WRONG_PASSWORD = 0xC000006A
STATUS_LOGON_FAILURE = 0xC000006D
STATUS_ACCOUNT_RESTRICTION = 0xC000006E
STATUS_PASSWORD_EXPIRED = 0xC0000071
STATUS_ACCOUNT_DISABLED = 0xC0000072
STATUS_TIME_DIFFERENCE_AT_DC = 0xC0000133
STATUS_LOGON_TYPE_NOT_GRANTED = 0xC000015B
STATUS_ACCOUNT_EXPIRED = 0xC0000193
STATUS_PASSWORD_MUST_CHANGE = 0xC0000224
STATUS_ACCOUNT_LOCKED_OUT = 0xC0000234
STATUS_AUDIT_FAILED = 0xC0000244

#: The 401.1 of every Windows-auth handshake's second round: never a finding.
HANDSHAKE_CODES = frozenset({SEC_E_NO_CREDENTIALS})

BAD_CREDENTIALS = frozenset({ERROR_LOGON_FAILURE, SEC_E_LOGON_DENIED, SEC_E_UNKNOWN_CREDENTIALS,
                             STATUS_LOGON_FAILURE, STATUS_WRONG_PASSWORD, STATUS_NO_SUCH_USER})
LOGON_TYPE_NOT_GRANTED = frozenset({ERROR_LOGON_TYPE_NOT_GRANTED, STATUS_LOGON_TYPE_NOT_GRANTED})
LOCKED_OUT = frozenset({ERROR_ACCOUNT_LOCKED_OUT, STATUS_ACCOUNT_LOCKED_OUT})
DISABLED_OR_EXPIRED = frozenset({ERROR_ACCOUNT_DISABLED, ERROR_ACCOUNT_EXPIRED, ERROR_PASSWORD_EXPIRED,
                                 ERROR_PASSWORD_MUST_CHANGE, STATUS_ACCOUNT_DISABLED, STATUS_ACCOUNT_EXPIRED,
                                 STATUS_PASSWORD_EXPIRED, STATUS_PASSWORD_MUST_CHANGE})
TIME_SKEW = frozenset({SEC_E_TIME_SKEW, STATUS_TIME_DIFFERENCE_AT_DC})
#: What a server that cannot decrypt or find the right Kerberos key answers with.
KERBEROS_FAILURE = frozenset({SEC_E_WRONG_PRINCIPAL, SEC_E_INVALID_TOKEN, SEC_E_UNSUPPORTED_FUNCTION,
                              SEC_E_SECPKG_NOT_FOUND, SEC_E_NO_AUTHENTICATING_AUTHORITY, SEC_E_LOGON_DENIED,
                              SEC_E_UNKNOWN_CREDENTIALS})
#: Logon failures a full Security log with CrashOnAuditFail produces for every non-admin account.
AUDIT_BLOCKED = frozenset({STATUS_AUDIT_FAILED, STATUS_ACCOUNT_RESTRICTION, ERROR_ACCOUNT_RESTRICTION,
                           ERROR_LOGON_TYPE_NOT_GRANTED, STATUS_LOGON_TYPE_NOT_GRANTED, ERROR_LOGON_FAILURE})

# 4625 reasons as hex strings
NT_BAD_CREDENTIALS = frozenset({"0xC000006A", "0xC0000064", "0xC000006D"})
NT_LOGON_TYPE = frozenset({"0xC000015B"})
NT_LOCKED = frozenset({"0xC0000234"})
NT_DISABLED = frozenset({"0xC0000072"})
NT_EXPIRED = frozenset({"0xC0000193"})
NT_PASSWORD_EXPIRED = frozenset({"0xC0000071"})
NT_MUST_CHANGE = frozenset({"0xC0000224"})
NT_DISABLED_OR_EXPIRED = NT_DISABLED | NT_EXPIRED | NT_PASSWORD_EXPIRED | NT_MUST_CHANGE
NT_TIME_SKEW = frozenset({"0xC0000133"})
NT_AUDIT = frozenset({"0xC0000244", "0xC000006E"})


def nt(value: str | int | None) -> str:
    """Normalise an NTSTATUS to ``0xC000006D`` form ("" for nothing / zero)."""
    if value is None or value == "":
        return ""
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except ValueError:
        return str(value).strip()
    number &= 0xFFFFFFFF
    return "" if number == 0 else f"0x{number:08X}"


def code_name(value: int) -> str:
    """``1326`` → ``ERROR_LOGON_FAILURE`` (via toolkit.codes when available)."""
    try:
        from toolkit.codes import decode_win32

        decoded = decode_win32(value)
        return decoded.name or decoded.hex
    except Exception:  # noqa: BLE001 - a name is decoration; the number is the evidence
        return f"0x{value & 0xFFFFFFFF:08X}"
