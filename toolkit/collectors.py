"""The catalogue of bundled collectors: ``ps_scripts/<Id>.ps1`` plus the sidecar ``<Id>.yml``.

A collector's sidecar is its contract: parameters (name, type, default, description) and the shape
of its output. ``Collector.bind`` checks and coerces the parameters a playbook or a user asks for
against that contract before anything reaches a host, so a typo fails here with a clear message
instead of as a PowerShell parameter-binding error on a hundred servers.

Files are read only through :func:`toolkit.resources.ps_scripts_dir`, so this module works the same
from a checkout and from an installed wheel. Script text is returned exactly as bundled (the lab and
any auditor compare it with the file), apart from CRLF normalisation.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from toolkit.errors import ConfigError
from toolkit.resources import ps_scripts_dir

#: The marker line every bundled script carries: ``# collector-id: Get-IisConfig/1``.
MARKER_RE = re.compile(r"^#\s*collector-id:\s*(?P<id>[A-Za-z_][\w-]*)/(?P<version>\d+)\s*$", re.MULTILINE)

BOOTSTRAP_ID = "_ssh_bootstrap"
#: The script a transport runs once per session to compile the C# core (``ps_scripts/_core_loader.ps1``).
CORE_LOADER_ID = "_core_loader"
#: The session function that runs several bundled steps in one WinRM pipeline (``_step_batch.ps1``).
STEP_BATCH_ID = "_step_batch"
STEP_BATCH_FUNCTION = "Invoke-IisFleetStepBatch"
#: Every wrapper that calls the C# core names a type of this namespace; others need no loader.
CORE_NAMESPACE = "[IisFleet.Target."

#: Parameter types a sidecar may declare, and the PowerShell type each maps to in ``param()``.
PARAM_TYPES: dict[str, str] = {"int": "int", "long": "long", "string": "string", "string[]": "string[]", "bool": "bool"}

#: How the SSH transport starts PowerShell; the bootstrap then reads the collector from stdin.
POWERSHELL_ARGS = ("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a collector, as its sidecar declares it.

    ``default`` is the script's own ``param()`` default (a static test keeps them equal). An empty
    string or list often means the script works the value out on the host, for example "24 hours
    before the host's clock" or "the log directories from applicationHost.config"; the description
    says so. ``format`` is an optional extra check: ``utc-time`` means an ISO 8601 time with a zone
    (or empty for the script's default).
    """

    name: str
    type: str
    default: Any
    description: str
    format: str | None = None


@dataclass(frozen=True)
class Collector:
    """A bundled collector: its id, version, script text, raw sidecar and parameter specs."""

    id: str
    version: int
    script: str = field(repr=False)
    sidecar: dict[str, Any] = field(repr=False)
    parameters: tuple[ParamSpec, ...]

    @property
    def description(self) -> str:
        return str(self.sidecar.get("description", "")).strip()

    def parameter(self, name: str) -> ParamSpec:
        """The spec named ``name``, matched case-insensitively as PowerShell does."""
        for spec in self.parameters:
            if spec.name.lower() == name.lower():
                return spec
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise ConfigError(f"collector {self.id} has no parameter {name!r} (it takes: {known})", field=name)

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` against the sidecar and return them coerced to the declared types.

        Only the parameters given are returned (under the sidecar's spelling); the script applies its
        own defaults for the rest, so one place defines them. ``None`` values mean "use the default"
        and are dropped.

        Raises:
            ConfigError: unknown parameter, or a value that does not convert to the declared type.
        """
        bound: dict[str, Any] = {}
        for name, value in params.items():
            spec = self.parameter(str(name))
            if value is None:
                continue
            if spec.name in bound:
                raise ConfigError(f"collector {self.id}: parameter {spec.name} given twice", field=spec.name)
            bound[spec.name] = _coerce(self.id, spec, value)
        return bound


def _coerce(collector_id: str, spec: ParamSpec, value: Any) -> Any:
    where = f"collector {collector_id}, parameter {spec.name}"

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {value!r}", field=spec.name)

    if spec.type in ("int", "long"):
        # bool is an int subclass in Python; True as a line count is always a mistake.
        if isinstance(value, bool):
            raise fail("a whole number")
        if isinstance(value, int):
            result: Any = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            result = int(value)
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        else:
            raise fail("a whole number")
        bits = 32 if spec.type == "int" else 64
        if not -(2 ** (bits - 1)) <= result < 2 ** (bits - 1):
            raise fail(f"a number that fits a {bits}-bit [{spec.type}]")
        return result
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.strip().lower() in {"true", "yes", "1"}
        raise fail("true or false")
    if spec.type == "string":
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ConfigError(f"{where}: a time without a time zone is ambiguous; give it in UTC",
                                  field=spec.name)
            value = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise fail("a string")
        text = str(value)
        _check_format(where, spec, text)
        return text
    if spec.type == "string[]":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise fail("a string or a list of strings")
        for item in items:
            _check_format(where, spec, item)
        return list(items)
    raise ConfigError(f"{where}: the sidecar declares unknown type {spec.type!r}", field=spec.name)


def _check_format(where: str, spec: ParamSpec, text: str) -> None:
    if spec.format == "utc-time" and text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{where}: {text!r} is not an ISO 8601 time such as 2026-11-24T21:00:00Z", field=spec.name
            ) from None
        if parsed.tzinfo is None:
            raise ConfigError(f"{where}: {text!r} has no time zone; end it with Z (UTC)", field=spec.name)


def parse_marker(script: str) -> tuple[str, int] | None:
    """The ``(id, version)`` from a script's marker line, or ``None`` when it has none."""
    match = MARKER_RE.search(script)
    if match is None:
        return None
    return match.group("id"), int(match.group("version"))


def _read_text(name: str) -> str:
    entry = ps_scripts_dir().joinpath(name)
    raw = entry.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ConfigError("bundled file starts with a UTF-8 BOM; scripts travel as text, save it without one",
                          path=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 ({exc.reason} at byte {exc.start})", path=name) from None
    return text.replace("\r\n", "\n")


def _param_specs(collector_id: str, sidecar: Mapping[str, Any]) -> tuple[ParamSpec, ...]:
    where = f"{collector_id}.yml"
    raw = sidecar.get("parameters") or []
    if not isinstance(raw, list):
        raise ConfigError("'parameters' must be a list", path=where, field="parameters")
    specs: list[ParamSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"parameter #{index + 1} needs a name", path=where, field="parameters")
        type_name = item.get("type")
        if type_name not in PARAM_TYPES:
            raise ConfigError(f"parameter {item['name']}: type must be one of {sorted(PARAM_TYPES)}",
                              path=where, field="parameters")
        specs.append(ParamSpec(name=item["name"], type=type_name, default=item.get("default"),
                               description=str(item.get("description", "")).strip(),
                               format=item.get("format")))
    return tuple(specs)


def _load_one(collector_id: str) -> Collector:
    script = _read_text(f"{collector_id}.ps1")
    try:
        sidecar = yaml.safe_load(_read_text(f"{collector_id}.yml"))
    except FileNotFoundError:
        raise ConfigError("collector has no sidecar .yml", path=f"{collector_id}.ps1") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"sidecar is not valid YAML: {exc}", path=f"{collector_id}.yml") from None
    if not isinstance(sidecar, dict):
        raise ConfigError("sidecar must be a mapping", path=f"{collector_id}.yml")
    marker = parse_marker(script)
    if marker is None:
        raise ConfigError("script has no '# collector-id: <Id>/<version>' marker line", path=f"{collector_id}.ps1")
    marker_id, marker_version = marker
    if marker_id != collector_id:
        raise ConfigError(f"marker names {marker_id!r} but the file is {collector_id}.ps1", path=f"{collector_id}.ps1")
    if sidecar.get("name") != collector_id or sidecar.get("version") != marker_version:
        raise ConfigError(
            f"sidecar says {sidecar.get('name')}/{sidecar.get('version')}, script marker says "
            f"{marker_id}/{marker_version}",
            path=f"{collector_id}.yml",
        )
    return Collector(id=collector_id, version=marker_version, script=script, sidecar=sidecar,
                     parameters=_param_specs(collector_id, sidecar))


@functools.cache
def _catalog() -> tuple[Collector, ...]:
    names = sorted(entry.name for entry in ps_scripts_dir().iterdir())
    ids = [n[: -len(".ps1")] for n in names if n.endswith(".ps1") and not n.startswith("_")]
    return tuple(_load_one(collector_id) for collector_id in ids)


def load_catalog() -> dict[str, Collector]:
    """Every bundled collector by id (``Get-IisConfig`` …), sorted by id.

    Raises:
        ConfigError: a bundled script or sidecar is inconsistent (missing marker, mismatched
            version, bad parameter spec). This is a packaging bug, not a user error.
    """
    return {collector.id: collector for collector in _catalog()}


def get_collector(collector_id: str) -> Collector:
    """The bundled collector ``collector_id``; ConfigError naming the known ids otherwise."""
    catalog = load_catalog()
    try:
        return catalog[collector_id]
    except KeyError:
        raise ConfigError(f"unknown collector {collector_id!r}; bundled: {', '.join(catalog)}") from None


def read_bundled_text(name: str) -> str:
    """The text of a bundled file of ``ps_scripts/`` (CRLF normalised), e.g. ``_session_probe.ps1``."""
    return _read_text(name)


@functools.cache
def ssh_bootstrap() -> str:
    """The text of ``_ssh_bootstrap.ps1``: reads ``{"script", "parameters"}`` JSON from stdin and runs it."""
    return _read_text(f"{BOOTSTRAP_ID}.ps1")


def ssh_bootstrap_command() -> str:
    """The command line an SSH client runs on a Windows host to start the bootstrap (once per connection).

    Each collector then goes on stdin as one JSON line ``{"script": ..., "parameters": ..., "end": ...}``.
    """
    encoded = base64.b64encode(ssh_bootstrap().encode("utf-16-le")).decode("ascii")
    return " ".join((*POWERSHELL_ARGS, "-EncodedCommand", encoded))


def ssh_request(collector: Collector, bound_params: Mapping[str, Any]) -> bytes:
    """One request for the session bootstrap: UTF-8 JSON ``{"script": ..., "parameters": ...}``. The SSH
    transport sends it as one line with an ``end`` token added (toolkit.transports.ssh)."""
    return json.dumps({"script": collector.script, "parameters": dict(bound_params)},
                      ensure_ascii=False).encode("utf-8")


@functools.cache
def core_loader() -> str:
    """The text of ``_core_loader.ps1`` without its comment lines (it travels once per session; a third of it
    was comments): compiles the core with Add-Type unless this version is loaded."""
    marker, _, rest = _read_text(f"{CORE_LOADER_ID}.ps1").partition("\n")
    return f"{marker}\n{without_comment_lines(rest)}"  # the marker line identifies the script (parse_marker)


def uses_core(script: str) -> bool:
    """Whether ``script`` calls the C# core, so the session must have loaded it first."""
    return CORE_NAMESPACE in script


def core_loader_parameters(*, functions: bool = False, files: Iterable[str] | None = None) -> dict[str, Any]:
    """The loader's parameters: the core's source and version travel as data, never as script text.

    The source goes gzip-compressed and base64-encoded (``CompressedSource``): the loader runs once per
    session, and the plain C# text was most of the bytes a host session sent (issue 17). ``files`` (core
    file names, ``toolkit.targetcore.closure``) sends only that part of the core, as its own version; None
    sends all of it. With ``functions`` the bundled wrappers go along the same way (``CompressedFunctions``,
    see :func:`session_functions_text`), so each step is then a short command call instead of its script."""
    from toolkit.targetcore.source import REFERENCES, core_source

    source = core_source(files)
    parameters: dict[str, Any] = {"CompressedSource": compress_core_text(source.text), "Version": source.version,
                                  "ReferencedAssemblies": list(REFERENCES)}
    if functions:
        parameters["CompressedFunctions"] = compress_core_text(session_functions_text())
    return parameters


def session_function_name(collector_id: str) -> str:
    """The function a session defines for collector ``collector_id`` (``Get-IisFleetCollectorHostFact``): the
    collector's verb, a noun no Windows module uses (the JEA module's private wrappers have the same names)."""
    verb, _, noun = collector_id.partition("-")
    return f"{verb}-IisFleetCollector{noun}"


@functools.cache
def session_functions_text() -> str:
    """PowerShell text defining one global function per bundled collector, its body the wrapper's code.

    The core loader runs it once per WinRM session (from ``CompressedFunctions``); the transport then calls
    ``session_function_name(id)`` with the step's parameters (a command, not a script), so no wrapper's text
    crosses the wire again in that session. The body is the wrapper file without its comments
    (:func:`without_comment_lines`; half the compressed size): ``[CmdletBinding()]`` and ``param()`` make the
    function take the same parameters the script does."""
    parts = []
    for collector in _catalog():
        body = without_comment_lines(collector.script).rstrip()
        parts.append(f"function global:{session_function_name(collector.id)} {{\n{body}\n}}\n")
    batch = without_comment_lines(_read_text(f"{STEP_BATCH_ID}.ps1")).rstrip()
    parts.append(f"function global:{STEP_BATCH_FUNCTION} {{\n{batch}\n}}\n")
    return "".join(parts)


def without_comment_lines(script: str) -> str:
    """``script`` without its whole-line comments: ``<# ... #>`` blocks that open a line and close one, and
    lines whose first non-blank character is ``#`` (``#requires`` kept). Comments at the end of a code line
    stay. Only for the bundled wrappers, which have no here-strings and no string spanning lines (a test
    compares the parsed code of both texts, token by token)."""
    kept: list[str] = []
    in_block = False
    for line in script.split("\n"):
        stripped = line.strip()
        if in_block:
            in_block = not stripped.endswith("#>")
            continue
        if stripped.startswith("<#"):
            in_block = len(stripped) < 4 or not stripped.endswith("#>")
            continue
        if stripped.startswith("#") and not stripped.lower().startswith("#requires"):
            continue
        kept.append(line)
    return "\n".join(kept)


def bundled_collector(script: str) -> Collector | None:
    """The bundled collector whose wrapper ``script`` is, exactly; None for any other script."""
    marker = parse_marker(script)
    if marker is None:
        return None
    collector = load_catalog().get(marker[0])
    return collector if collector is not None and collector.script == script else None


@functools.cache
def compress_core_text(text: str) -> str:
    """``text`` as the loader's ``CompressedSource`` expects it: UTF-8, gzip (mtime 0, so the bytes are
    the same on every run), base64."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def decompress_core_text(encoded: str) -> str:
    """The inverse of :func:`compress_core_text`; raises ValueError (or OSError/EOFError from gzip) when
    ``encoded`` is not that form."""
    return gzip.decompress(base64.b64decode(encoded, validate=True)).decode("utf-8")
