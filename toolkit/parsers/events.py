"""Event records from ``Get-AuthEventLog`` → decoded logon failures and event-log state.

Records arrive as the collector writes them: ``{log, id, provider, time_utc, record_id, machine,
data: {EventData name: value}}``. Status codes are decoded with :mod:`toolkit.codes`.
:func:`records_from_event_xml` turns rendered event XML (Event Viewer's XML view, ``wevtutil qe
/f:xml``) into the same shape, so exported samples can be fed in too.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.errors import InputError

from ._xml import parse_xml
from .types import EventLogState, LogonFailure

try:  # LOGS owns toolkit.codes; the fallback keeps this module importable on its own.
    from toolkit.codes import decode_ntstatus as _decode_ntstatus
except ImportError:  # pragma: no cover - only while toolkit.codes is missing
    _decode_ntstatus = None

MAX_RECORDS = 100_000

#: Used only when toolkit.codes is unavailable (facts.md §2.4).
_FALLBACK_NTSTATUS = {
    0x0: "STATUS_SUCCESS", 0xC000005E: "STATUS_NO_LOGON_SERVERS", 0xC0000064: "STATUS_NO_SUCH_USER",
    0xC000006A: "STATUS_WRONG_PASSWORD", 0xC000006D: "STATUS_LOGON_FAILURE",
    0xC000006E: "STATUS_ACCOUNT_RESTRICTION", 0xC000006F: "STATUS_INVALID_LOGON_HOURS",
    0xC0000070: "STATUS_INVALID_WORKSTATION", 0xC0000071: "STATUS_PASSWORD_EXPIRED",
    0xC0000072: "STATUS_ACCOUNT_DISABLED", 0xC0000133: "STATUS_TIME_DIFFERENCE_AT_DC",
    0xC000015B: "STATUS_LOGON_TYPE_NOT_GRANTED", 0xC0000193: "STATUS_ACCOUNT_EXPIRED",
    0xC0000224: "STATUS_PASSWORD_MUST_CHANGE", 0xC0000234: "STATUS_ACCOUNT_LOCKED_OUT",
}

#: .NET EventLogMode / wevtutil retention words → the EventLogState vocabulary.
_RETENTION = {"circular": "overwrite", "overwriteasneeded": "overwrite", "overwrite": "overwrite",
              "autobackup": "archive", "archive": "archive", "retain": "manual", "donotoverwrite": "manual",
              "manual": "manual", "overwriteolder": "overwrite-older"}


def decode_status(value: object) -> tuple[str, str]:
    """``"0xc000006d"`` / ``-1073741715`` / ``3221225581`` → (``"0xC000006D"``, ``"STATUS_LOGON_FAILURE"``)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "-")):
        return "", ""
    if _decode_ntstatus is not None:
        try:
            code = _decode_ntstatus(value if isinstance(value, (int, str)) else str(value))
        except (ValueError, TypeError):
            return str(value)[:32], ""
        return (code.hex if code.value else "0x0"), code.name
    try:
        text = str(value).strip()
        number = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return str(value)[:32], ""
    number &= 0xFFFFFFFF
    return (f"0x{number:08X}" if number else "0x0"), _FALLBACK_NTSTATUS.get(number, "")


def _clean(value: object) -> str:
    text = "" if value is None else str(value).strip()
    return "" if text == "-" else text


def _int(value: object) -> int | None:
    text = _clean(value)
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def parse_logon_failures(events: Sequence[dict], *, source: str = "Get-AuthEventLog") -> list[LogonFailure]:
    """The Security 4625 records among ``events``, decoded; other event ids are skipped.

    A record that is not an object, or whose ``data`` is not an object, raises :class:`InputError`
    naming its index.
    """
    if not isinstance(events, Sequence) or isinstance(events, (str, bytes)):
        raise InputError("events is not a list", path=source, field="events")
    failures = []
    for index, record in enumerate(events[:MAX_RECORDS]):
        if not isinstance(record, dict):
            raise InputError("event record is not an object", path=source, field=f"events[{index}]")
        if _int(record.get("id")) != 4625:
            continue
        data = record.get("data")
        if not isinstance(data, dict):
            raise InputError("4625 record has no data object", path=source, field=f"events[{index}].data")
        status, status_name = decode_status(data.get("Status"))
        sub_status, sub_status_name = decode_status(data.get("SubStatus"))
        failures.append(LogonFailure(
            time_utc=_clean(record.get("time_utc")),
            record_id=_int(record.get("record_id")),
            target_user=_clean(data.get("TargetUserName")),
            target_domain=_clean(data.get("TargetDomainName")),
            status=status, status_name=status_name,
            sub_status=sub_status, sub_status_name=sub_status_name,
            logon_type=_int(data.get("LogonType")),
            logon_process=_clean(data.get("LogonProcessName")),
            auth_package=_clean(data.get("AuthenticationPackageName")),
            ip_address=_clean(data.get("IpAddress")),
            workstation=_clean(data.get("WorkstationName")),
            process_name=_clean(data.get("ProcessName")),
        ))
    return failures


def parse_event_log_states(logs: Sequence[dict], *, source: str = "Get-AuthEventLog") -> list[EventLogState]:
    """The collector's ``logs`` list → :class:`EventLogState` (sizes as ints, retention normalised)."""
    if not isinstance(logs, Sequence) or isinstance(logs, (str, bytes)):
        raise InputError("logs is not a list", path=source, field="logs")
    states = []
    for index, log in enumerate(logs):
        if not isinstance(log, dict) or not _clean(log.get("name")):
            raise InputError("log entry without a name", path=source, field=f"logs[{index}]")
        is_full = log.get("is_full")
        retention = _clean(log.get("retention"))
        states.append(EventLogState(
            name=_clean(log.get("name")),
            max_size_bytes=_int(log.get("max_size_bytes")),
            file_size_bytes=_int(log.get("file_size_bytes")),
            is_full=is_full if isinstance(is_full, bool) else None,
            retention=_RETENTION.get(retention.replace(" ", "").replace("_", "").lower(), retention.lower()),
        ))
    return states


def records_from_event_xml(text: str, path: str) -> list[dict]:
    """Rendered event XML (one or more ``<Event>`` elements) → collector-shaped records.

    Accepts a bare sequence of events (wrapped here in one root) and Event Viewer's copy format,
    whose lines may start with the ``- `` collapse markers.
    """
    lines = [line[2:] if line.startswith("- ") else line for line in text.splitlines()]
    body = "\n".join(lines)
    if body.lstrip().startswith("<?xml"):
        body = body.split("?>", 1)[1]
    if "<!doctype" in body.lower() or "<!entity" in body.lower():
        # Wrapping would hide the DTD from the hardened parser's own check; refuse it here.
        raise InputError("refused unsafe XML: DTDs and entities are not accepted in host files", path=path)
    root = parse_xml(f"<Events>{body}</Events>", path)
    records = []
    for event in root.all("Event"):
        system = event.child("System")
        if system is None:
            raise InputError("<Event> without <System>", path=path, line=event.line)

        def text_of(tag: str) -> str:
            node = system.child(tag)
            return node.text.strip() if node is not None else ""

        provider = system.child("Provider")
        created = system.child("TimeCreated")
        data = {}
        event_data = event.child("EventData")
        for item in event_data.all("Data") if event_data is not None else ():
            if item.get("Name"):
                data[item.get("Name")] = item.text.strip()
        records.append({
            "log": text_of("Channel"),
            "id": _int(text_of("EventID")),
            "provider": (provider.get("Name") or "") if provider is not None else "",
            "time_utc": (created.get("SystemTime") or "") if created is not None else "",
            "record_id": _int(text_of("EventRecordID")),
            "machine": text_of("Computer"),
            "data": data,
            "line": event.line,
        })
    return records
