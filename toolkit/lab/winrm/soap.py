"""WS-Management SOAP envelopes: parse a request, build a response or a fault.

Responses are built as text (the shapes are fixed and small); requests are parsed with defusedxml
because the lab, like a real listener, must not trust what arrives on the wire.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
}

ACTION_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_COMMAND = _SHELL + "Command"
ACTION_RECEIVE = _SHELL + "Receive"
ACTION_SEND = _SHELL + "Send"
ACTION_SIGNAL = _SHELL + "Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RESOURCE_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
RESOURCE_PWSH_PREFIX = "http://schemas.microsoft.com/powershell/"
RESOURCE_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"

COMMAND_STATE_DONE = _SHELL + "CommandState/Done"
COMMAND_STATE_RUNNING = _SHELL + "CommandState/Running"

# WSManFault codes a client branches on (MS-WSMV / winerror.h).
CODE_OPERATION_TIMEOUT = 0x80338029  # ERROR_WSMAN_OPERATION_TIMEDOUT: pypsrp/pywinrm poll again
CODE_SHELL_NOT_FOUND = 0x8033805B  # ERROR_WSMAN_UNEXPECTED_SELECTORS (unknown ShellId)
CODE_ACTION_NOT_SUPPORTED = 0x803381DE  # ERROR_WSMAN_ACTION_NOT_SUPPORTED (illustrative for unknown actions)
CODE_INVALID_ARGS = 0x80338043  # ERROR_WSMAN_INVALID_SELECTORS-style: malformed request


class SoapError(Exception):
    """A request the lab answers with a WS-Management fault (HTTP 500)."""

    def __init__(
        self, code: int, message: str, subcode: str = "w:InternalError", sender: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.sender = sender


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    options: dict[str, str]
    operation_timeout_s: float
    max_envelope_size: int
    body: Element
    raw: Element | None = field(repr=False, default=None)


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(text: str | None, default: float) -> float:
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def parse_request(data: bytes) -> Request:
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # defusedxml raises several types; all mean "not a usable envelope"
        raise SoapError(
            CODE_INVALID_ARGS,
            f"The request is not well-formed XML: {exc}",
            "w:SchemaValidationError",
            sender=True,
        ) from exc
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise SoapError(
            CODE_INVALID_ARGS,
            "The SOAP envelope has no Header or Body.",
            "w:SchemaValidationError",
            sender=True,
        )

    def text(path: str) -> str:
        node = header.find(path, NS)
        return (node.text or "").strip() if node is not None else ""

    selectors = {
        node.attrib.get("Name", ""): (node.text or "").strip()
        for node in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    options = {
        node.attrib.get("Name", ""): (node.text or "").strip()
        for node in header.findall("wsman:OptionSet/wsman:Option", NS)
    }
    try:
        max_envelope = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    return Request(
        action=text("wsa:Action"),
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        selectors=selectors,
        options=options,
        operation_timeout_s=parse_duration(text("wsman:OperationTimeout"), 60.0),
        max_envelope_size=max(8192, min(max_envelope, 10 * 1024 * 1024)),
        body=body,
        raw=root,
    )


_ENVELOPE = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
    "<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{message_id}</a:MessageID>"
    "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
    "<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
)


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return _ENVELOPE.format(
        action=escape(action), message_id=str(uuid.uuid4()).upper(), relates_to=escape(relates_to), body=body
    ).encode("utf-8")


def fault(relates_to: str, error: SoapError, machine: str) -> bytes:
    side = "s:Sender" if error.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{side}</s:Value><s:Subcode><s:Value>{escape(error.subcode)}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(error.message)}</s:Text></s:Reason>'
        '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f"Code={quoteattr(str(error.code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(error.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(ACTION_FAULT, relates_to, body)


def operation_timeout() -> SoapError:
    return SoapError(
        CODE_OPERATION_TIMEOUT,
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
        "w:TimedOut",
    )


def shell_not_found(shell_id: str) -> SoapError:
    return SoapError(
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server.",
        "w:InvalidSelectors",
        sender=True,
    )
