"""Failed Request Tracing files (``fr000123.xml``) → an ordered event summary.

The root ``<failedRequest>`` says what happened (URL, status, authentication type, token user);
each ``<Event>`` child is an ETW record whose name is ``RenderingInfo/Opcode`` (the numeric
``System/Opcode`` when not rendered). ``EventData/Data`` values are raw; ``freb:Description``
entries are the renderings (notification names, error text). Hardened XML: DTDs and entities
are refused, sizes capped.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import InputError

from ._xml import Node, parse_xml
from .types import FrebEvent, FrebTrace

MAX_FREB_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 20_000
MAX_VALUE_CHARS = 2000

#: AuthType values in AUTH_* events (facts.md §7.3); AUTH_START renders 128 as MapCliCert.
AUTH_TYPES = {1: "Anonymous", 2: "Basic", 4: "NT", 16: "Digest", 64: "Passport", 128: "CertMap"}


def _status(text: str | None) -> tuple[int | None, int | None]:
    """``"401.2"`` → (401, 2); ``"401"`` → (401, None)."""
    if not text:
        return None, None
    main, _, sub = text.strip().partition(".")
    try:
        return int(main), (int(sub) if sub else None)
    except ValueError:
        return None, None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def error_hex(value: str) -> str:
    """An HRESULT as FREB writes it (unsigned or negative decimal, or hex) → ``0x80070005``."""
    value = value.strip()
    try:
        number = int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return ""
    return f"0x{number & 0xFFFFFFFF:08X}"


def _event(node: Node) -> FrebEvent:
    system = node.child("System")
    rendering = node.child("RenderingInfo")
    name = ""
    if rendering is not None and rendering.child("Opcode") is not None:
        name = rendering.child("Opcode").text.strip()
    provider = ""
    if system is not None:
        if not name and system.child("Opcode") is not None:
            name = system.child("Opcode").text.strip()
        provider_node = system.child("Provider")
        provider = (provider_node.get("Name") or "") if provider_node is not None else ""
    data: dict[str, str] = {}
    event_data = node.child("EventData")
    for item in event_data.all("Data") if event_data is not None else ():
        key = item.get("Name") or ""
        if key:
            data[key] = item.text.strip()[:MAX_VALUE_CHARS]
    rendered: dict[str, str] = {}
    for item in rendering.all("Description") if rendering is not None else ():
        key = item.get("Data") or ""
        if key:
            rendered[key] = " ".join(item.text.split())[:MAX_VALUE_CHARS]
    for key in ("AuthTypeSupported", "RequestAuthType", "AuthType"):
        if key in data and key not in rendered:
            number = _int_or_none(data[key])
            if number in AUTH_TYPES:
                rendered[key] = AUTH_TYPES[number]
    raw_error = data.get("ErrorCode", "")
    time = ""
    if system is not None and system.child("TimeCreated") is not None:
        time = system.child("TimeCreated").get("SystemTime") or ""
    merged = dict(data)
    merged.update({f"{key}.text": value for key, value in rendered.items()})
    return FrebEvent(
        name=name,
        provider=provider,
        module=data.get("ModuleName", ""),
        notification=rendered.get("Notification") or data.get("Notification", ""),
        http_status=_int_or_none(data.get("HttpStatus")),
        http_substatus=_int_or_none(data.get("HttpSubStatus")),
        error_code=error_hex(raw_error) if raw_error else "",
        data=tuple(merged.items()),
        error_text=rendered.get("ErrorCode", ""),
        time_utc=time,
        line=node.line or None,
    )


def parse_freb(data: bytes, path: str) -> FrebTrace:
    """Parse one FREB file. Not a ``<failedRequest>`` document → :class:`InputError`."""
    root = parse_xml(data, path, max_bytes=MAX_FREB_BYTES)
    if root.tag != "failedRequest":
        raise InputError(f"root element is <{root.tag}>, expected <failedRequest>", path=path, line=root.line)
    status, substatus = _status(root.get("statusCode"))
    if status is None:
        raise InputError(f"failedRequest/@statusCode {root.get('statusCode')!r} is not a status code",
                         path=path, line=root.line)
    if substatus is None:
        substatus = _int_or_none(root.get("subStatusCode"))
    events = []
    for node in root.all("Event"):
        if len(events) >= MAX_EVENTS:
            break
        events.append(_event(node))
    return FrebTrace(
        file=path,
        url=root.get("url") or "",
        site_id=_int_or_none(root.get("siteId")),
        status_code=status,
        substatus=substatus,
        authentication_type=root.get("authenticationType") or "",
        token_user_name=root.get("tokenUserName") or "",
        app_pool=root.get("appPoolId") or "",
        events=tuple(events),
        verb=root.get("verb") or "",
        remote_user_name=root.get("remoteUserName") or "",
        user_name=root.get("userName") or "",
        failure_reason=root.get("failureReason") or "",
        trigger_status=root.get("triggerStatusCode") or "",
        time_taken_ms=_int_or_none(root.get("timeTaken")),
        truncated=len(root.all("Event")) > MAX_EVENTS,
    )


# --- what a trace says about who refused ------------------------------------------------------------

def error_event(trace: FrebTrace) -> FrebEvent | None:
    """The event that set the trace's failing status (the first with that status, else the first >= 400)."""
    first = None
    for event in trace.events:
        if event.http_status is None or event.http_status < 400:
            continue
        if event.http_status == trace.status_code and event.http_substatus in (None, trace.substatus):
            return event
        first = first or event
    return first


@dataclass(frozen=True)
class FilterVerdict:
    """Which ISAPI filter a 401.4 trace points at.

    ``running`` is True when the refusal was set while that filter's notification was still running
    (between its FILTER_START and FILTER_END): the trace says which filter refused. False means only that
    it was the last filter to start before the refusal (a filter may answer and end before IIS records
    the status), so another filter that ran earlier cannot be ruled out.
    """

    name: str
    start: FrebEvent
    error: FrebEvent | None
    running: bool
    started: tuple[str, ...]  # every filter the trace shows starting, in order, without repeats


def refusing_filter(trace: FrebTrace) -> FilterVerdict | None:
    """Read a 401.4 trace's FILTER_START / FILTER_END events (``FilterName``) against the event that set
    the error status. None when the trace shows no filter at all (a trace taken without the ISAPI filter
    area or verbosity)."""
    open_filters: list[FrebEvent] = []
    last: FrebEvent | None = None
    started: list[str] = []
    refusal = error_event(trace)
    for event in trace.events:
        if event.name == "FILTER_START":
            name = event.value("FilterName")
            if name:
                open_filters.append(event)
                last = event
                if name not in started:
                    started.append(name)
        elif event.name == "FILTER_END" and open_filters:
            open_filters.pop()
        elif event is refusal or event.name == "FILTER_ERROR":
            if open_filters:
                culprit = open_filters[-1]
                return FilterVerdict(culprit.value("FilterName"), culprit, event, True, tuple(started))
            if last is not None:
                return FilterVerdict(last.value("FilterName"), last, event, False, tuple(started))
    if last is None:
        return None
    return FilterVerdict(last.value("FilterName"), last, refusal, False, tuple(started))


@dataclass(frozen=True)
class AccessDenial:
    """What a 401.3 trace says: the file that could not be opened, as whom, by which module and why."""

    file: str          # physical path (empty when the trace does not say)
    identity: str      # DOMAIN\user the file was opened as (empty when unknown)
    module: str
    error_code: str    # HRESULT, e.g. 0x80070005
    error_text: str
    error: FrebEvent | None
    file_event: FrebEvent | None


#: Events that name the physical file a handler opens (FileName) and who opens it (UserName, DomainName).
_FILE_EVENTS = ("FILE_CACHE_ACCESS_START", "FILE_CACHE_ACCESS_END", "STATIC_FILE_OPEN", "HANDLER_FILE_OPEN")


def denied_access(trace: FrebTrace) -> AccessDenial:
    """Read a 401.3 trace: the last file-open event before the failing status (its FileName, UserName and
    DomainName), else the request's physical path; the module and error code of the failing event; the
    identity from the file event, else the root's tokenUserName."""
    refusal = error_event(trace)
    file_event: FrebEvent | None = None
    physical = ""
    for event in trace.events:
        if event is refusal:
            break
        if event.name in _FILE_EVENTS and event.value("FileName"):
            file_event = event
        elif event.value("PhysicalPath"):
            physical = event.value("PhysicalPath")
    identity = ""
    if file_event is not None:
        user, domain = file_event.value("UserName"), file_event.value("DomainName")
        identity = f"{domain}\\{user}" if user and domain else user
    return AccessDenial(
        file=file_event.value("FileName") if file_event is not None else physical,
        identity=identity or trace.token_user_name,
        module=refusal.module if refusal is not None else "",
        error_code=refusal.error_code if refusal is not None else "",
        error_text=refusal.error_text if refusal is not None else "",
        error=refusal, file_event=file_event)
