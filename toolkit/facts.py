"""Facts: small, typed summaries of one collector's envelope that a playbook's ``when`` can test.

``facts_from_envelope("Get-IisW3CLog", envelope)`` → ``{"terminal_401": 12, "status_401": 40, ...}``.
Every collector also gets ``errors`` (how many sub-probes failed). Facts never raise on odd host
output: the envelope is untrusted, so a missing or mistyped field simply yields a zero/false/null fact.

``FACTS`` lists each collector's fact names with a one-line meaning; playbook validation uses it to
reject a ``when`` that names a fact that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

#: Decompressed size cap for a log excerpt read to compute facts (host output is untrusted).
MAX_EXCERPT_BYTES = 256 * 1024 * 1024

_COMMON = {"errors": "number of failed sub-probes in the envelope's errors[]"}

FACTS: dict[str, dict[str, str]] = {
    "Get-HostFact": {
        "iis_installed": "IIS is installed (bool)",
        "iis_version": "IIS version string, or null",
        "domain_joined": "the host is domain-joined (bool)",
        "windows_auth_installed": "WindowsAuthenticationModule is among the installed auth modules (bool)",
        "auth_module_count": "number of installed IIS authentication modules",
        "ps_version": "PowerShell version string",
        "os_build": "OS build string",
    },
    "Get-IisConfig": {
        "web_configs": "number of web.config files returned",
        "has_redirection": "a redirection.config (shared configuration) was found (bool)",
        "truncated": "a cap truncated the configuration (bool)",
    },
    "Get-IisW3CLog": {
        "status_401": "401 responses in the window (handshake and terminal)",
        "terminal_401": "401 responses that were not followed by a success from the same client",
        "handshake_401": "401 responses that were the first leg of a successful handshake",
        "requests": "data lines (requests) inside the time window",
        "files": "log files read",
        "truncated": "a cap truncated at least one file (bool)",
        "terminal_401_exact": "false when the handshake classification was unavailable and "
        "terminal_401 counts every 401",
    },
    "Get-IisHttpErrLog": {
        "entries": "HTTPERR data lines kept",
        "files": "HTTPERR files read",
    },
    "Get-IisFailedRequestTrace": {
        "traces": "FREB traces returned",
    },
    "Get-IisContentAcl": {
        "paths": "content paths examined",
        "missing_paths": "content paths that do not exist",
        "unc_paths": "content paths on UNC shares",
    },
    "Get-LocalUserRight": {
        "users": "local users returned",
        "disabled_users": "local users that are disabled",
        "locked_out_users": "local users that are locked out",
    },
    "Get-IisSpn": {
        "queries": "setspn queries run",
        "failed_queries": "setspn queries with a non-zero exit code",
    },
    "Get-AuthEventLog": {
        "events": "authentication events returned",
        "logon_failures": "Security 4625 events",
        "kerberos_errors": "System Kerberos event 4 (KRB_AP_ERR_MODIFIED) events",
        "security_log_full": "the Security log is full (bool)",
    },
    "Get-IisCertificate": {
        "ssl_bindings": "HTTP.sys SSL bindings returned",
        "missing_certificates": "SSL bindings whose certificate is not in the store",
    },
}
for _facts in FACTS.values():
    _facts.update(_COMMON)


def known_facts(collector_id: str) -> dict[str, str]:
    """Fact names (and meanings) a ``when`` may use for ``collector_id``; empty if unknown."""
    return FACTS.get(collector_id, dict(_COMMON))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _optional(module: str, name: str) -> Any:
    """``module.name`` when that module exists (another layer may not be installed yet), else None."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def decode_blob_bytes(blob: Any, *, limit: int = MAX_EXCERPT_BYTES) -> bytes:
    """Decode an envelope blob (docs/contracts.md §1.2) with a size cap; b"" when unusable.

    Uses COLLECTORS' ``toolkit.contract.decode_blob`` when it exists so there is one decoder.
    """
    if not isinstance(blob, Mapping):
        return b""
    decode_blob = _optional("toolkit.contract", "decode_blob")
    if decode_blob is not None:
        try:
            return bytes(decode_blob(dict(blob), max_bytes=limit))
        except Exception:  # noqa: BLE001 - a bad blob means "no facts", never a crash
            return b""
    encoding, content = blob.get("encoding"), blob.get("content")
    if not isinstance(content, str):
        return b""
    try:
        if encoding == "text":
            return content.encode("utf-8")[:limit]
        raw = base64.b64decode(content, validate=False)
        if encoding == "base64":
            return raw[:limit]
        if encoding == "gzip+base64":
            inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header
            return inflater.decompress(raw, limit)
    except (binascii.Error, zlib.error, ValueError):
        return b""
    return b""


def _decode_reservation(blob: Any) -> Any:
    """A reservation of the blob's declared size on ``toolkit.contract.DECODE_BUDGET`` (a no-op when
    that module or the size is missing)."""
    budget = _optional("toolkit.contract", "DECODE_BUDGET")
    size = blob.get("bytes") if isinstance(blob, Mapping) else None
    if budget is None or not isinstance(size, int) or isinstance(size, bool):
        return contextlib.nullcontext()
    return budget.reserve(min(size, MAX_EXCERPT_BYTES))


def _excerpt_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The ``<n><TAB><line>`` excerpt format, without depending on LOGS' parser."""
    for raw in data.splitlines():
        number, tab, line = raw.partition(b"\t")
        if tab and number.strip().isdigit():
            yield int(number), line


def _count_401_lines(data: bytes) -> int:
    """Fallback: count data lines whose ``sc-status`` field is 401, reading each ``#Fields`` header."""
    status_index: int | None = None
    count = 0
    for _, line in _excerpt_lines(data):
        if line.startswith(b"#"):
            if line.startswith(b"#Fields:"):
                names = line[len(b"#Fields:") :].split()
                status_index = names.index(b"sc-status") if b"sc-status" in names else None
            continue
        if status_index is None:
            continue
        fields = line.split()
        if len(fields) > status_index and fields[status_index] == b"401":
            count += 1
    return count


def _w3c_facts(data: Mapping[str, Any]) -> dict[str, Any]:
    files = [f for f in _list(data.get("files")) if isinstance(f, Mapping)]
    facts: dict[str, Any] = {
        "files": len(files),
        "requests": sum(_int(f.get("data_lines")) for f in files),
        "truncated": any(f.get("truncated") is True for f in files),
    }
    # LOGS' analyzer is optional at this layer: without it, fall back to a plain count below.
    analyzer_class = _optional("toolkit.logs", "LogAnalyzer")
    if analyzer_class is not None:
        try:
            analyzer = analyzer_class()
            for file in files:
                # Terminal 401s arrive as excerpt lines, handshakes as counts (Get-IisW3CLog/2). Up to 32
                # hosts compute facts at once: each decoded excerpt counts against the process-wide
                # decode budget while it is held.
                with _decode_reservation(file.get("excerpt")):
                    analyzer.feed_collected(file, decode_blob_bytes(file.get("excerpt")))
            result = analyzer.result()
            facts.update(
                status_401=int(result.status_401_total),
                terminal_401=int(result.status_401_terminal),
                handshake_401=int(result.status_401_handshake),
                terminal_401_exact=True,
            )
            return facts
        except Exception:  # noqa: BLE001 - fall through to the plain count
            pass
    status_401 = 0
    for file in files:
        with _decode_reservation(file.get("excerpt")):
            status_401 += _count_401_lines(decode_blob_bytes(file.get("excerpt")))
    # Without the handshake analysis every 401 counts as terminal: a `when` on terminal_401 then errs
    # on the side of collecting more evidence, never less.
    facts.update(status_401=status_401, terminal_401=status_401, handshake_401=0, terminal_401_exact=False)
    return facts


def facts_from_envelope(collector_id: str, envelope: Mapping[str, Any] | None) -> dict[str, Any]:
    """Compute the facts of one collector's envelope (see ``FACTS`` for the names)."""
    if not isinstance(envelope, Mapping):
        return {}
    data = envelope.get("data") if isinstance(envelope.get("data"), Mapping) else {}
    assert isinstance(data, Mapping)
    facts: dict[str, Any] = {"errors": len(_list(envelope.get("errors")))}
    if collector_id == "Get-HostFact":
        modules = [str(m) for m in _list(data.get("auth_modules"))]
        facts.update(
            iis_installed=data.get("iis_installed") is True,
            iis_version=data.get("iis_version") if isinstance(data.get("iis_version"), str) else None,
            domain_joined=data.get("domain_joined") is True,
            windows_auth_installed="WindowsAuthenticationModule" in modules,
            auth_module_count=len(modules),
            ps_version=str(data.get("ps_version") or ""),
            os_build=str(data.get("os_build") or ""),
        )
    elif collector_id == "Get-IisConfig":
        web_configs = [w for w in _list(data.get("web_configs")) if isinstance(w, Mapping)]
        blobs = [w.get("content") for w in web_configs]
        app_host = data.get("application_host_config")
        if isinstance(app_host, Mapping):
            blobs.append(app_host.get("content"))
        facts.update(
            web_configs=len(web_configs),
            has_redirection=isinstance(data.get("redirection_config"), Mapping),
            truncated=any(isinstance(b, Mapping) and b.get("truncated") is True for b in blobs),
        )
    elif collector_id == "Get-IisW3CLog":
        facts.update(_w3c_facts(data))
    elif collector_id == "Get-IisHttpErrLog":
        files = [f for f in _list(data.get("files")) if isinstance(f, Mapping)]
        facts.update(files=len(files), entries=sum(_int(f.get("lines_kept")) for f in files))
    elif collector_id == "Get-IisFailedRequestTrace":
        facts.update(traces=len(_list(data.get("files"))))
    elif collector_id == "Get-IisContentAcl":
        paths = [p for p in _list(data.get("paths")) if isinstance(p, Mapping)]
        facts.update(
            paths=len(paths),
            missing_paths=sum(1 for p in paths if p.get("exists") is False),
            unc_paths=sum(1 for p in paths if p.get("is_unc") is True),
        )
    elif collector_id == "Get-LocalUserRight":
        users = [u for u in _list(data.get("users")) if isinstance(u, Mapping)]
        facts.update(
            users=len(users),
            disabled_users=sum(1 for u in users if u.get("enabled") is False),
            locked_out_users=sum(1 for u in users if u.get("locked_out") is True),
        )
    elif collector_id == "Get-IisSpn":
        queries = [q for q in _list(data.get("queries")) if isinstance(q, Mapping)]
        facts.update(
            queries=len(queries), failed_queries=sum(1 for q in queries if _int(q.get("exit_code")) != 0)
        )
    elif collector_id == "Get-IisCertificate":
        bindings = [b for b in _list(data.get("ssl_bindings")) if isinstance(b, Mapping)]
        facts.update(ssl_bindings=len(bindings),
                     missing_certificates=sum(1 for b in bindings if b.get("certificate_status") == "not-found"))
    elif collector_id == "Get-AuthEventLog":
        events = [e for e in _list(data.get("events")) if isinstance(e, Mapping)]
        logs = [entry for entry in _list(data.get("logs")) if isinstance(entry, Mapping)]
        facts.update(
            events=len(events),
            logon_failures=sum(1 for e in events if e.get("id") == 4625),
            kerberos_errors=sum(
                1 for e in events if e.get("id") == 4 and str(e.get("log", "")).lower() == "system"
            ),
            security_log_full=any(
                entry.get("is_full") is True and str(entry.get("name", "")).lower() == "security"
                for entry in logs
            ),
        )
    return facts
