"""Decoders for the numeric codes that come with an IIS 401: substatus, ``sc-win32-status``, NTSTATUS.

Each family is one data table; the decoders only normalise the input and look it up. IIS writes
``sc-win32-status`` as an unsigned 32-bit decimal (``2148074254``), while .NET and some tools render the
same value as a signed Int32 (``-2146893042``) or hex (``0x8009030E``); every form decodes to the same
:class:`Win32Code`. Meanings are short paraphrases meant for an admin reading a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Win32Code",
    "CodeKind",
    "SUBSTATUS_401",
    "WIN32_ERRORS",
    "SSPI_ERRORS",
    "NTSTATUS_CODES",
    "decode_win32",
    "decode_ntstatus",
    "substatus_meaning",
    "parse_code",
]

CodeKind = Literal["win32", "sspi", "ntstatus", "unknown"]


@dataclass(frozen=True, slots=True)
class Win32Code:
    """One decoded status value. ``value`` is always the unsigned 32-bit form."""

    value: int
    hex: str
    name: str
    meaning: str
    kind: CodeKind

    def __str__(self) -> str:
        return f"{self.hex} {self.name}" if self.name else self.hex


#: IIS 401 substatus → meaning (IIS 5–10; 401.7 only on IIS 6 URL authorization).
SUBSTATUS_401: dict[int, str] = {
    0: "No substatus: the 401 came from the application itself (e.g. ASP.NET [Authorize] or Forms auth)",
    1: "Logon failed: the credentials or SSPI token offered were rejected",
    2: "Logon failed due to server configuration: no enabled authentication method produced a user "
       "(also the first, anonymous round of every Windows-auth handshake)",
    3: "Access denied by an ACL on the resource for the authenticated or anonymous identity",
    4: "Authorization refused by an ISAPI filter",
    5: "Authorization refused by an ISAPI extension or CGI application",
    7: "Access denied by URL authorization policy (IIS 6 only)",
    501: "Dynamic IP restriction: too many concurrent requests from this client IP",
    502: "Dynamic IP restriction: request rate limit exceeded for this client IP",
    503: "Client IP address is on the IP restriction deny list",
    504: "Client host name is on the IP restriction deny list",
}

#: Plain Win32 error codes (values below 0x10000) seen with 401s. value → (symbol, meaning).
WIN32_ERRORS: dict[int, tuple[str, str]] = {
    0: ("ERROR_SUCCESS", "No error"),
    2: ("ERROR_FILE_NOT_FOUND", "The file was not found"),
    3: ("ERROR_PATH_NOT_FOUND", "The path was not found"),
    5: ("ERROR_ACCESS_DENIED", "Access denied (with 401.2: challenge sent, no credentials yet)"),
    64: ("ERROR_NETNAME_DELETED", "The client connection went away before the response completed"),
    1236: ("ERROR_CONNECTION_ABORTED", "The connection was aborted by the local system"),
    1326: ("ERROR_LOGON_FAILURE", "Unknown user name or bad password"),
    1327: ("ERROR_ACCOUNT_RESTRICTION",
           "An account restriction blocks sign-in (e.g. blank password, policy)"),
    1328: ("ERROR_INVALID_LOGON_HOURS", "The account may not sign in at this time"),
    1329: ("ERROR_INVALID_WORKSTATION", "The user may not sign in on this computer"),
    1330: ("ERROR_PASSWORD_EXPIRED", "The password has expired"),
    1331: ("ERROR_ACCOUNT_DISABLED", "The account is disabled"),
    1385: ("ERROR_LOGON_TYPE_NOT_GRANTED",
           "The user lacks (or is denied) the logon right for this logon type"),
    1907: ("ERROR_PASSWORD_MUST_CHANGE", "The password must be changed before signing in"),
    1909: ("ERROR_ACCOUNT_LOCKED_OUT", "The account is locked out"),
}

#: SSPI / security-package results (0x8009xxxx), typical of Negotiate/NTLM/Kerberos 401.1.
SSPI_ERRORS: dict[int, tuple[str, str]] = {
    0x80090302: ("SEC_E_UNSUPPORTED_FUNCTION", "The requested security function is not supported"),
    0x80090305: ("SEC_E_SECPKG_NOT_FOUND", "The requested security package does not exist"),
    0x80090308: ("SEC_E_INVALID_TOKEN",
                 "The authentication token is invalid (corrupted, truncated or altered "
                 "by a proxy)"),
    0x8009030C: ("SEC_E_LOGON_DENIED", "The logon attempt failed (bad credentials via NTLM/Negotiate)"),
    0x8009030D: ("SEC_E_UNKNOWN_CREDENTIALS", "The credentials supplied were not recognized"),
    0x8009030E: ("SEC_E_NO_CREDENTIALS", "No credentials were available in the security package "
                 "(often the NTLM challenge step of a handshake)"),
    0x80090311: ("SEC_E_NO_AUTHENTICATING_AUTHORITY", "No authority (domain controller) could be contacted"),
    0x80090322: ("SEC_E_WRONG_PRINCIPAL", "The target principal name is incorrect (SPN on the wrong or "
                 "duplicate account)"),
    0x80090324: ("SEC_E_TIME_SKEW", "Client and server clocks are too far apart"),
    0x80090346: ("SEC_E_BAD_BINDINGS", "The client's channel bindings are wrong (Extended Protection)"),
}

#: NTSTATUS codes (4625 Status/SubStatus, 4776, some tool output).
NTSTATUS_CODES: dict[int, tuple[str, str]] = {
    0x00000000: ("STATUS_SUCCESS", "Success"),
    0xC000005E: ("STATUS_NO_LOGON_SERVERS", "No logon server is available"),
    0xC0000064: ("STATUS_NO_SUCH_USER", "The account does not exist (bad user name)"),
    0xC000006A: ("STATUS_WRONG_PASSWORD", "Known user, wrong password"),
    0xC000006D: ("STATUS_LOGON_FAILURE", "Generic logon failure; the SubStatus gives the detail"),
    0xC000006E: ("STATUS_ACCOUNT_RESTRICTION", "Valid credentials, but an account restriction blocked them"),
    0xC000006F: ("STATUS_INVALID_LOGON_HOURS", "Outside the allowed logon hours"),
    0xC0000070: ("STATUS_INVALID_WORKSTATION", "Not allowed to log on from this workstation"),
    0xC0000071: ("STATUS_PASSWORD_EXPIRED", "The password has expired"),
    0xC0000072: ("STATUS_ACCOUNT_DISABLED", "The account is disabled"),
    0xC00000DC: ("STATUS_INVALID_SERVER_STATE", "The SAM server is in the wrong state"),
    0xC0000133: ("STATUS_TIME_DIFFERENCE_AT_DC", "Clock skew between this machine and the domain controller"),
    0xC000015B: ("STATUS_LOGON_TYPE_NOT_GRANTED", "The requested logon type is not granted by local policy"),
    0xC000018C: ("STATUS_TRUSTED_DOMAIN_FAILURE", "The trust between the domains failed"),
    0xC0000192: ("STATUS_NETLOGON_NOT_STARTED", "The Netlogon service is not started"),
    0xC0000193: ("STATUS_ACCOUNT_EXPIRED", "The user account has expired"),
    0xC0000224: ("STATUS_PASSWORD_MUST_CHANGE", "The password must be changed before the first logon"),
    0xC0000234: ("STATUS_ACCOUNT_LOCKED_OUT", "The account is locked out after too many bad attempts"),
    0xC0000244: ("STATUS_AUDIT_FAILED", "A security audit could not be generated (CrashOnAuditFail)"),
    0xC0000413: ("STATUS_AUTHENTICATION_FIREWALL_FAILED", "Selective authentication blocked the account"),
}

_MASK32 = 0xFFFFFFFF


def parse_code(value: int | str) -> int:
    """Return the unsigned 32-bit value of ``value``.

    Accepts ints and strings in unsigned decimal, negative (signed Int32) decimal or ``0x`` hex.
    Raises :class:`ValueError` for anything else or for values outside the 32-bit range.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a status code: {value!r}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        try:
            is_hex = text.lower().startswith(("0x", "-0x"))
            number = int(text, 16) if is_hex else int(text, 10)
        except ValueError:
            raise ValueError(f"not a status code: {value!r}") from None
    if not -(1 << 31) <= number <= _MASK32:
        raise ValueError(f"status code out of the 32-bit range: {value!r}")
    return number & _MASK32


def _kind_of(value: int) -> CodeKind:
    # The top bits say which family a value belongs to (MS-ERREF ranges).
    if value < 0x10000:
        return "win32"
    if (value >> 16) == 0x8009:
        return "sspi"
    if (value >> 16) == 0x8007:
        return "win32"  # HRESULT_FROM_WIN32: the low word is a Win32 error
    if 0xC0000000 <= value <= 0xCFFFFFFF:
        return "ntstatus"
    return "unknown"


def _make(value: int, kind: CodeKind, entry: tuple[str, str] | None) -> Win32Code:
    name, meaning = entry if entry else ("", "")
    return Win32Code(value=value, hex=f"0x{value:08X}" if value > 0xFFFF else f"0x{value:X}",
                     name=name, meaning=meaning, kind=kind)


def decode_win32(value: int | str) -> Win32Code:
    """Decode an ``sc-win32-status`` (or FREB ``ErrorCode``) value: Win32, SSPI or NTSTATUS range.

    Unknown values still decode (hex and kind are always right); ``name`` and ``meaning`` are then empty.
    """
    number = parse_code(value)
    kind = _kind_of(number)
    if kind == "win32":
        low = number & 0xFFFF if number > 0xFFFF else number
        entry = WIN32_ERRORS.get(low)
        if entry and number > 0xFFFF:
            entry = (f"HRESULT_FROM_WIN32({entry[0]})", entry[1])
        return _make(number, kind, entry)
    if kind == "sspi":
        return _make(number, kind, SSPI_ERRORS.get(number))
    if kind == "ntstatus":
        return _make(number, kind, NTSTATUS_CODES.get(number))
    return _make(number, kind, None)


def decode_ntstatus(value: int | str) -> Win32Code:
    """Decode an NTSTATUS value such as a 4625 ``Status``/``SubStatus`` (``"0xC000006D"``).

    ``0`` decodes as ``STATUS_SUCCESS``; values outside the NTSTATUS error range fall back to
    :func:`decode_win32`.
    """
    number = parse_code(value)
    entry = NTSTATUS_CODES.get(number)
    if entry is not None:
        return _make(number, "ntstatus", entry)
    return decode_win32(number)


def substatus_meaning(status: int, substatus: int) -> str:
    """One line saying what ``status.substatus`` means; empty for combinations this table doesn't know.

    Only 401 is tabled in full; the 403.501–403.504 codes mean the same as their 401 twins.
    """
    if status == 401:
        return SUBSTATUS_401.get(substatus, "")
    if status == 403 and substatus in (501, 502, 503, 504):
        return SUBSTATUS_401[substatus]
    return ""
