"""Connection options: field tables, coercion and layering onto ``WinRMOptions``/``SSHOptions``.

Options arrive in layers (defaults, then groups from the outermost in, then the host). Each value keeps
where it was written so a bad value is reported at its own line, even when it came from a group.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.errors import InventoryError
from toolkit.models import SSHOptions, WinRMOptions


@dataclass(frozen=True)
class Sourced:
    """A value and where it was written."""

    value: Any
    path: str | None
    line: int | None
    field: str


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1", "validate"):
            return True
        if lowered in ("false", "no", "off", "0", "ignore"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError("expected an integer")


def _port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        port = _int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("expected a TCP port (1-65535)")
    return port


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number of seconds") from None
    if number <= 0:
        raise ValueError("expected a positive number of seconds")
    return number


def _str(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError("expected a non-empty string")


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _opt_path(value: Any) -> str | None:
    return None if value is None else os.path.expanduser(_str(value))


def _choice(*allowed: str) -> Any:
    def check(value: Any) -> str:
        text = str(value).strip().lower() if isinstance(value, str) else value
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return str(text)

    return check


WINRM_FIELDS: dict[str, Any] = {
    "scheme": _choice("http", "https"),
    "port": _port,
    "auth": _choice("negotiate", "kerberos", "ntlm", "credssp", "certificate", "basic"),
    "cert_validation": _bool,
    "ca_bundle": _opt_path,
    "encryption": _choice("auto", "always", "never"),
    "allow_insecure_basic": _bool,
    "connect_timeout": _seconds,
    "operation_timeout": _seconds,
    "read_timeout": _seconds,
    "configuration_name": _str,
    "negotiate_service": _str,
    "negotiate_hostname_override": _opt_str,
    "send_cbt": _bool,
    "path": _str,
    "kerberos_delegation": _bool,
    "jea": _bool,
    "session_functions": _bool,
}

SSH_FIELDS: dict[str, Any] = {
    "port": _port,
    "known_hosts": _opt_path,
    "host_key_checking": _bool,
    "connect_timeout": _seconds,
    "command_timeout": _seconds,
}


def check_option_names(section: str, options: Any, *, path: str, line: int, field: str) -> None:
    """Fail on a non-mapping or an unknown option name (typos must not be silently ignored)."""
    table = WINRM_FIELDS if section == "winrm" else SSH_FIELDS
    if not isinstance(options, Mapping):
        raise InventoryError(f"expected a mapping of {section} options", path=path, line=line, field=field)
    for key in options:
        if key not in table:
            key_line = getattr(options, "key_lines", {}).get(key, line)
            raise InventoryError(
                f"unknown {section} option {key!r} (known: {', '.join(sorted(table))})",
                path=path,
                line=key_line,
                field=f"{field}.{key}",
            )


def layer(
    target: dict[str, Sourced], options: Mapping[str, Any] | None, *, path: str | None, field: str
) -> None:
    """Overlay ``options`` (a mapping from YAML, or a plain dict) onto ``target``."""
    if not options:
        return
    lines = getattr(options, "value_lines", {})
    base_line = getattr(options, "line", None)
    for key, value in options.items():
        target[key] = Sourced(value, path, lines.get(key, base_line), f"{field}.{key}")


def _build(section: str, layered: Mapping[str, Sourced]) -> dict[str, Any]:
    table = WINRM_FIELDS if section == "winrm" else SSH_FIELDS
    values: dict[str, Any] = {}
    for key, sourced in layered.items():
        if key not in table:
            raise InventoryError(
                f"unknown {section} option {key!r}", path=sourced.path, line=sourced.line, field=sourced.field
            )
        try:
            values[key] = table[key](sourced.value)
        except ValueError as exc:
            raise InventoryError(
                f"{exc}, got {sourced.value!r}", path=sourced.path, line=sourced.line, field=sourced.field
            ) from None
    return values


def build_winrm(layered: Mapping[str, Sourced]) -> WinRMOptions:
    """Coerce layered values into ``WinRMOptions`` (unset fields keep the model's defaults)."""
    options = WinRMOptions(**_build("winrm", layered))
    if options.operation_timeout >= options.read_timeout:
        # pypsrp requires it: the server must answer an operation before the client stops reading.
        where = layered.get("operation_timeout") or layered.get("read_timeout")
        raise InventoryError(
            f"operation_timeout ({options.operation_timeout:g}) must be below read_timeout "
            f"({options.read_timeout:g})",
            path=where.path if where else None,
            line=where.line if where else None,
            field=where.field if where else "winrm.operation_timeout",
        )
    return options


def build_ssh(layered: Mapping[str, Sourced]) -> SSHOptions:
    """Coerce layered values into ``SSHOptions`` (unset fields keep the model's defaults)."""
    return SSHOptions(**_build("ssh", layered))
