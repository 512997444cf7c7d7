"""Get-IisCertificate's answer: HTTP.sys SSL bindings and the certificates they name (docs/collectors.md).

Host output is untrusted: every string is capped, dates that do not parse become ``None`` (the rules then
say the date is unknown rather than guess), and at most ``MAX_BINDINGS`` records are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.errors import InputError

MAX_BINDINGS = 5000
_MAX_TEXT = 512
_MAX_NAMES = 500


@dataclass(frozen=True)
class CertificateInfo:
    thumbprint: str
    subject: str
    subject_cn: str
    issuer: str
    not_before: dt.datetime | None  # aware, UTC
    not_after: dt.datetime | None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    has_private_key: bool = True
    key_usage: tuple[str, ...] | None = None  # None: no keyUsage extension
    enhanced_key_usage: tuple[str, ...] | None = None  # None: no EKU extension (any purpose)
    self_signed: bool = False


@dataclass(frozen=True)
class SslBinding:
    kind: str  # ip, sni, ccs
    endpoint: str
    address: str
    host_name: str
    port: int
    certificate_hash: str
    store: str
    status: str  # found, not-found, no-hash, unreadable, undecodable, central-store
    certificate: CertificateInfo | None = None


def _text(value: Any) -> str:
    return str(value if value is not None else "")[:_MAX_TEXT]


def parse_utc(value: Any) -> dt.datetime | None:
    """An ISO 8601 time as an aware UTC datetime; None when it does not parse."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in (value or [])[:_MAX_NAMES]) if isinstance(value, list) else ()


def _optional_names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _names(value)


def _certificate(raw: Any) -> CertificateInfo | None:
    if not isinstance(raw, Mapping):
        return None
    return CertificateInfo(
        thumbprint=_text(raw.get("thumbprint")).upper(), subject=_text(raw.get("subject")),
        subject_cn=_text(raw.get("subject_cn")), issuer=_text(raw.get("issuer")),
        not_before=parse_utc(raw.get("not_before_utc")), not_after=parse_utc(raw.get("not_after_utc")),
        dns_names=_names(raw.get("dns_names")), ip_addresses=_names(raw.get("ip_addresses")),
        has_private_key=bool(raw.get("has_private_key")), key_usage=_optional_names(raw.get("key_usage")),
        enhanced_key_usage=_optional_names(raw.get("enhanced_key_usage")), self_signed=bool(raw.get("self_signed")))


def parse_ssl_bindings(data: Mapping[str, Any]) -> tuple[SslBinding, ...]:
    """The ``data`` of a Get-IisCertificate envelope → its SSL bindings. Raises InputError when the shape is wrong."""
    raw = data.get("ssl_bindings")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise InputError("Get-IisCertificate: data.ssl_bindings is not a list")
    out = []
    for index, item in enumerate(raw[:MAX_BINDINGS]):
        if not isinstance(item, Mapping):
            raise InputError(f"Get-IisCertificate: data.ssl_bindings[{index}] is not an object")
        try:
            port = int(item.get("port") or 0)
        except (TypeError, ValueError):
            port = 0
        out.append(SslBinding(kind=_text(item.get("kind")).lower(), endpoint=_text(item.get("endpoint")),
                              address=_text(item.get("address")), host_name=_text(item.get("host_name")),
                              port=port, certificate_hash=_text(item.get("certificate_hash")).upper(),
                              store=_text(item.get("store")) or "MY", status=_text(item.get("certificate_status")),
                              certificate=_certificate(item.get("certificate"))))
    return tuple(out)
