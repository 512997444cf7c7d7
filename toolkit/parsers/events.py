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


def decode_export(data: bytes) -> str:
    """Text of an exported file: UTF-8 or UTF-16 by its byte-order mark (PowerShell 5.1 redirects
    ``wevtutil`` output as UTF-16LE), UTF-8 without one."""
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors="replace")


def records_from_event_xml(text: str, path: str) -> list[dict]:
    """Rendered event XML → collector-shaped records. Accepts what admins export:

    * Event Viewer's "Save Selected Events…" / "Save as XML": a UTF-8 byte-order mark, an XML
      declaration and an ``<Events>`` root whose ``<Event>`` children carry ``RenderingInfo``;
    * ``wevtutil qe Security /f:xml`` (and ``Get-WinEvent | % ToXml``): a bare sequence of ``<Event>``
      elements with no root and no declaration (wrapped here in one root);
    * Event Viewer's XML view copied as text, whose lines may start with the ``- `` collapse markers.
    """
    text = text.lstrip("\ufeff")
    lines = [line[2:] if line.startswith("- ") else line for line in text.splitlines()]
    body = "\n".join(lines).strip()
    if body.startswith("<?xml"):
        _declaration, end, body = body.partition("?>")
        if not end:
            raise InputError("the XML declaration is never closed ('?>' missing)", path=path, line=1)
        body = body.strip()
    if "<!doctype" in body.lower() or "<!entity" in body.lower():
        # Wrapping would hide the DTD from the hardened parser's own check; refuse it here.
        raise InputError("refused unsafe XML: DTDs and entities are not accepted in host files", path=path)
    # A document that already has its <Events> root is parsed as it is (wrapping it again would hide its
    # events one level down); anything else is a sequence of <Event> elements.
    wrapped = not (body.startswith("<Events") and body.rstrip().endswith("</Events>"))
    root = parse_xml(f"<Events>{body}</Events>" if wrapped else body, path)
    if root.tag == "Event":
        events = [root]
    else:
        events = root.all("Event")
    records = []
    for event in events:
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
        for position, item in enumerate(event_data.all("Data") if event_data is not None else (), 1):
            # Classic event sources (Write-EventLog, many Application providers) write <Data> without a
            # Name: kept by position, "Data[1]", so their insertion strings are not lost.
            data[item.get("Name") or f"Data[{position}]"] = item.text.strip()
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
        if len(records) >= MAX_RECORDS:
            break
    return records


#: Suffixes of event exports an admin saves: Event Viewer / wevtutil XML, and the binary log file.
EVENT_EXPORT_SUFFIXES = (".xml", ".evtx")


def records_from_evtx(path: str) -> list[dict]:
    """Records of a binary ``.evtx`` file (a log copied off a server, or Event Viewer's "Save All Events
    As… (*.evtx)"), read with the ``evtx`` package from PyPI (a maintained Rust parser with wheels for
    Linux, Windows and macOS): each record's XML rendering goes through :func:`records_from_event_xml`.
    """
    try:
        from evtx import PyEvtxParser  # type: ignore[import-not-found]
    except ImportError:
        raise InputError("reading .evtx files needs the evtx package: pip install 'iisfleet[evtx]' "
                         "(or export the events as XML from Event Viewer)", path=path) from None
    records: list[dict] = []
    try:
        parser = PyEvtxParser(path)
        for item in parser.records():
            for record in records_from_event_xml(str(item.get("data") or ""), path):
                record["line"] = None  # a binary file has no lines; the record id identifies the event
                if record.get("record_id") is None:
                    record["record_id"] = _int(item.get("event_record_id"))
                records.append(record)
            if len(records) >= MAX_RECORDS:
                break
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"not a readable .evtx file: {str(exc)[:200]}", path=path) from None
    return records


def read_event_export(path: str, data: bytes | None = None) -> list[dict]:
    """Records of one exported event file, whichever format it is (by content, not by name): ``.evtx``
    starts with ``ElfFile``; anything else is read as event XML. Raises :class:`InputError`."""
    if data is None:
        try:
            with open(path, "rb") as stream:
                data = stream.read(64 * 1024 * 1024 + 1)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if data.startswith(b"ElfFile\x00"):
        return records_from_evtx(path)
    if len(data) > 64 * 1024 * 1024:
        raise InputError("event export larger than 64 MiB; filter it (wevtutil qe /q:...) first", path=path)
    return records_from_event_xml(decode_export(data), path)


def looks_like_event_export(head: bytes) -> bool:
    """Whether the first bytes of a file are an event export (so a folder scan can pick them up)."""
    if head.startswith(b"ElfFile\x00"):
        return True
    text = decode_export(head[:4096]) if head[:2] in (b"\xff\xfe", b"\xfe\xff") else \
        head[:4096].decode("utf-8", "replace").lstrip("\ufeff")
    text = text.lstrip()
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[-1].lstrip()
    return text.startswith("<Events") or text.startswith("<Event ") or text.startswith("<Event>")


def summarize_event_exports(records: Sequence[dict], sources: Sequence[str]) -> dict:
    """What exported events add to an offline log analysis (``iisfleet analyze``): how many records of
    which ids, and the Security 4625 logon failures by reason with the accounts they hit. 1104 (the
    Security log is full) and 1102 (it was cleared) are named because they explain a host's 401.1s."""
    by_id: dict[str, int] = {}
    for record in records:
        key = str(_int(record.get("id")) if _int(record.get("id")) is not None else "?")
        by_id[key] = by_id.get(key, 0) + 1
    reasons: dict[str, dict] = {}
    for failure in parse_logon_failures(list(records), source=", ".join(sources)[:200] or "events"):
        name = (failure.sub_status_name if failure.reason == failure.sub_status else failure.status_name) or ""
        entry = reasons.setdefault(failure.reason, {"reason": failure.reason, "name": name, "count": 0,
                                                    "accounts": {}, "logon_types": {}})
        entry["count"] += 1
        account = f"{failure.target_domain}\\{failure.target_user}" if failure.target_domain else failure.target_user
        entry["accounts"][account or "-"] = entry["accounts"].get(account or "-", 0) + 1
        logon_type = str(failure.logon_type) if failure.logon_type is not None else "-"
        entry["logon_types"][logon_type] = entry["logon_types"].get(logon_type, 0) + 1
    failures = sorted(reasons.values(), key=lambda e: (-e["count"], e["reason"]))
    for entry in failures:
        entry["accounts"] = [{"account": a, "count": n}
                             for a, n in sorted(entry["accounts"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
        entry["logon_types"] = dict(sorted(entry["logon_types"].items()))
    return {"sources": list(sources), "records": len(records), "by_id": dict(sorted(by_id.items())),
            "logon_failures": failures, "security_log_full": by_id.get("1104", 0) > 0,
            "security_log_cleared": by_id.get("1102", 0) > 0}
