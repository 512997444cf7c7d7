"""Playbooks: which collectors to run on every host, with which parameters, under which conditions.

A playbook is YAML (docs/playbooks.md)::

    name: triage-401
    description: Explain the 401s.
    report: true                      # the runner writes the reports at the end
    parameters:
      since: {type: duration, default: 24h, description: How far back to read.}
    steps:
      - collector: Get-IisW3CLog
        parameters: {Since: "{{ since | ago }}"}
        timeout: 10m
      - collector: Get-IisFailedRequestTrace
        when: "Get-IisW3CLog.terminal_401 > 0"

Everything is checked when the file loads, and every error names the file, line and field. Templates are
``{{ parameter }}`` optionally followed by filters (``ago``, ``seconds``, ``int``, ``string``); ``when``
is a small expression language over facts of earlier steps on the same host (``toolkit.facts``) and
the playbook's parameters: ``and``, ``or``, ``not``, parentheses, ``== != < <= > >=``, numbers,
quoted strings, ``true``/``false``/``null``. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from toolkit import resources
from toolkit.errors import PlaybookError
from toolkit.facts import known_facts
from toolkit.inventory.yamlsource import key_line, line_of, load_yaml, parse_yaml, start_line

ParamType = Literal["string", "int", "float", "bool", "duration", "list"]
PARAM_TYPES: tuple[str, ...] = ("string", "int", "float", "bool", "duration", "list")
_TYPE_ALIASES = {
    "str": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "list[string]": "list",
    "string[]": "list",
    "strings": "list",
    "choice": "string",
}

PLAYBOOK_KEYS = {"name", "description", "parameters", "steps", "report"}
PARAMETER_KEYS = {"type", "default", "description", "choices", "min", "max"}
STEP_KEYS = {"collector", "parameters", "when", "timeout", "description"}

# --- durations ------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: Any) -> float:
    """``24h``, ``1h30m``, ``90s``, ``2d``, ``500ms`` or a number of seconds → seconds.

    Raises:
        ValueError: anything else, zero or negative.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration like 24h, 30m or 90s")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = list(_DURATION_PART.finditer(text))
            if not parts or "".join(p.group(0) for p in parts) != text:
                raise ValueError("expected a duration like 24h, 30m, 90s or 1h30m")
            seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    else:
        raise ValueError("expected a duration like 24h, 30m or 90s")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: 86400 → ``24h``, 5400 → ``90m``, 45 → ``45s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- parameters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One typed playbook parameter. ``default`` is already coerced; ``required`` when it has none."""

    name: str
    type: ParamType
    default: Any = None
    description: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    line: int | None = None

    def coerce(self, value: Any) -> Any:
        """Coerce a YAML value or a command-line string to this parameter's type.

        Raises:
            ValueError: with a message naming what was expected.
        """
        result: Any
        if self.type == "string":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError("expected a string")
            result = str(value)
        elif self.type == "int":
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                value = int(value)
            if not isinstance(value, int):
                raise ValueError("expected an integer")
            result = value
        elif self.type == "float":
            if isinstance(value, bool):
                raise ValueError("expected a number")
            try:
                result = float(value)
            except (TypeError, ValueError):
                raise ValueError("expected a number") from None
        elif self.type == "bool":
            if isinstance(value, str) and value.strip().lower() in (
                "true",
                "yes",
                "1",
                "on",
                "false",
                "no",
                "0",
                "off",
            ):
                value = value.strip().lower() in ("true", "yes", "1", "on")
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            result = value
        elif self.type == "duration":
            result = parse_duration(value)
        else:  # list of strings; a command-line string is comma-separated
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list) or not all(
                isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
            ):
                raise ValueError("expected a list of strings")
            result = [str(v) for v in value]
        if self.choices is not None and result not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and isinstance(result, (int, float)) and result < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and isinstance(result, (int, float)) and result > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return result

    def to_dict(self) -> dict[str, Any]:
        default = format_duration(self.default) if self.type == "duration" and self.default else self.default
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": default,
            "description": self.description,
            "required": self.required,
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


class BoundParameters(dict):  # type: ignore[type-arg]
    """Parameter values for one run (a plain ``dict`` for JSON), plus ``now``: the run's reference
    time, so ``{{ since | ago }}`` gives every host the same window."""

    now: datetime


# --- templates ------------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: filter → (accepted input types, output type)
FILTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "ago": (("duration",), "string"),  # ISO 8601 UTC of (run start − duration)
    "seconds": (("duration", "int", "float"), "int"),
    "int": (("int", "float", "duration", "bool"), "int"),
    "string": (PARAM_TYPES, "string"),
}


@dataclass(frozen=True)
class _Expression:
    name: str
    filters: tuple[str, ...]


def _parse_template_expression(text: str) -> _Expression:
    parts = [part.strip() for part in text.split("|")]
    if not parts[0] or not _NAME.match(parts[0]):
        raise ValueError(f"expected a parameter name in '{{{{{text}}}}}'")
    for name in parts[1:]:
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r} (known: {', '.join(FILTERS)})")
    return _Expression(parts[0], tuple(parts[1:]))


def _apply_filters(value: Any, filters: Sequence[str], now: datetime) -> Any:
    for name in filters:
        if name == "ago":
            value = _iso(now - timedelta(seconds=float(value)))
        elif name in ("seconds", "int"):
            value = int(float(value)) if not isinstance(value, bool) else int(value)
        elif name == "string":
            value = str(value)
    return value


class Template:
    """A parameter value with ``{{ name | filter }}`` placeholders.

    A value that is exactly one placeholder keeps the type it renders to (a list stays a list, an int
    an int); placeholders inside other text render as text.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def expressions(self) -> Iterator[_Expression]:
        for value in self._strings(self.raw):
            for match in _TEMPLATE.finditer(value):
                yield _parse_template_expression(match.group(1))

    @classmethod
    def _strings(cls, value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from cls._strings(item)

    def result_type(self, parameters: Mapping[str, Parameter]) -> str | None:
        """The type the value renders to (``None``: a literal, check it as it is)."""
        if isinstance(self.raw, str):
            whole = _TEMPLATE.fullmatch(self.raw.strip())
            if whole:
                expression = _parse_template_expression(whole.group(1))
                kind: str = parameters[expression.name].type
                for name in expression.filters:
                    kind = FILTERS[name][1]
                return kind
            if _TEMPLATE.search(self.raw):
                return "string"
        return None

    def render(self, bound: Mapping[str, Any], now: datetime) -> Any:
        return self._render(self.raw, bound, now)

    @classmethod
    def _render(cls, value: Any, bound: Mapping[str, Any], now: datetime) -> Any:
        if isinstance(value, list):
            return [cls._render(item, bound, now) for item in value]
        if not isinstance(value, str) or "{{" not in value:
            return value
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            expression = _parse_template_expression(whole.group(1))
            return _apply_filters(bound[expression.name], expression.filters, now)

        def substitute(match: re.Match[str]) -> str:
            expression = _parse_template_expression(match.group(1))
            rendered = _apply_filters(bound[expression.name], expression.filters, now)
            return ",".join(map(str, rendered)) if isinstance(rendered, list) else str(rendered)

        return _TEMPLATE.sub(substitute, value)


# --- `when` expressions ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<number>-?\d+(?:\.\d+)?)(?![\w.-])
    | (?P<string>"[^"\\]*"|'[^'\\]*')
    | (?P<op>==|!=|<=|>=|<|>|\(|\))
    | (?P<ref>[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_]*)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


class WhenSyntaxError(ValueError):
    pass


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise WhenSyntaxError(
                f"unexpected text at column {position + 1}: {text[position : position + 12]!r}"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class Condition:
    """A parsed ``when``. ``refs`` are the ``Collector.fact`` references, ``names`` the parameters."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self._tokens = _tokenize(self.text)
        self._position = 0
        self.refs: list[tuple[str, str]] = []
        self.names: list[str] = []
        if not self._tokens:
            raise WhenSyntaxError("empty condition")
        self.tree = self._or()
        if self._position != len(self._tokens):
            raise WhenSyntaxError(f"unexpected {self._tokens[self._position][1]!r}")

    # Recursive descent: or → and → not → comparison → operand.
    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise WhenSyntaxError("the condition ends too early")
        self._position += 1
        return token

    def _is_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "name" and token[1] == word

    def _or(self) -> Any:
        node = self._and()
        while self._is_word("or"):
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._not()
        while self._is_word("and"):
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Any:
        if self._is_word("not"):
            self._take()
            return ("not", self._not())
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._operand()
        token = self._peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARISONS:
            self._take()
            return ("cmp", token[1], left, self._operand())
        return left

    def _operand(self) -> Any:
        kind, text = self._take()
        if kind == "op" and text == "(":
            node = self._or()
            closing = self._take()
            if closing != ("op", ")"):
                raise WhenSyntaxError("missing ')'")
            return node
        if kind == "number":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "string":
            return ("lit", text[1:-1])
        if kind == "ref":
            collector, _, fact = text.rpartition(".")
            self.refs.append((collector, fact))
            return ("ref", collector, fact)
        if kind == "name":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text == "null":
                return ("lit", None)
            if text in _KEYWORDS:
                raise WhenSyntaxError(f"unexpected {text!r}")
            self.names.append(text)
            return ("param", text)
        raise WhenSyntaxError(f"unexpected {text!r}")

    def evaluate(self, facts: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> tuple[bool, str]:
        """Evaluate against one host's facts; a missing result makes the condition false, with why."""
        seen: dict[str, Any] = {}
        try:
            result = bool(self._eval(self.tree, facts, params, seen))
        except _Missing as missing:
            return False, f"when {self.text!r}: {missing}"
        except TypeError:
            values = ", ".join(f"{k} = {v!r}" for k, v in seen.items())
            return False, f"when {self.text!r}: cannot compare ({values})"
        values = ", ".join(f"{k} = {v!r}" for k, v in seen.items())
        verdict = "true" if result else "false"
        return result, f"when {self.text!r} is {verdict}" + (f" ({values})" if values else "")

    def _eval(
        self,
        node: Any,
        facts: Mapping[str, Mapping[str, Any]],
        params: Mapping[str, Any],
        seen: dict[str, Any],
    ) -> Any:
        op = node[0]
        if op == "lit":
            return node[1]
        if op == "ref":
            collector, fact = node[1], node[2]
            if collector not in facts:
                raise _Missing(f"{collector} has no result on this host (failed or skipped)")
            if fact not in facts[collector]:
                raise _Missing(f"{collector} reported no {fact!r}")
            seen[f"{collector}.{fact}"] = facts[collector][fact]
            return facts[collector][fact]
        if op == "param":
            seen[node[1]] = params.get(node[1])
            return params.get(node[1])
        if op == "not":
            return not self._eval(node[1], facts, params, seen)
        if op == "and":
            return self._eval(node[1], facts, params, seen) and self._eval(node[2], facts, params, seen)
        if op == "or":
            return self._eval(node[1], facts, params, seen) or self._eval(node[2], facts, params, seen)
        left = self._eval(node[2], facts, params, seen)
        right = self._eval(node[3], facts, params, seen)
        if node[1] == "==":
            return left == right
        if node[1] == "!=":
            return left != right
        if left is None or right is None:
            raise TypeError("None is not ordered")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[node[1]]


class _Missing(Exception):
    pass


# --- steps and playbooks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One collector run. ``raw_parameters`` are the YAML values (templates not yet rendered)."""

    collector: str
    raw_parameters: Mapping[str, Any] = field(default_factory=dict)
    when: Condition | None = None
    timeout: float | None = None
    description: str = ""
    line: int | None = None

    def parameters(self, bound: Mapping[str, Any]) -> dict[str, Any]:
        """The collector's parameters with templates rendered from ``bound`` (``Playbook.bind``).

        Collector defaults are not added here: ``Collector.bind`` does that.
        """
        now = getattr(bound, "now", None) or datetime.now(UTC)
        return {name: Template(value).render(bound, now) for name, value in self.raw_parameters.items()}

    def should_run(
        self, facts: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any] | None = None
    ) -> tuple[bool, str]:
        """Whether this step runs on a host, given facts of its earlier steps (collector id → facts,
        from ``toolkit.facts.facts_from_envelope``) and the bound parameters; with a reason."""
        if self.when is None:
            return True, "no condition"
        return self.when.evaluate(facts, params or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "collector": self.collector,
            "parameters": dict(self.raw_parameters),
            "when": self.when.text if self.when else None,
            "timeout": self.timeout,
            "description": self.description,
        }


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    parameters: dict[str, Parameter]
    steps: list[Step]
    report: bool = False
    path: str = ""
    catalog_source: str = "toolkit.collectors"

    def bind(
        self, overrides: Mapping[str, Any] | None = None, *, now: datetime | None = None
    ) -> BoundParameters:
        """Defaults overlaid with ``overrides`` (YAML values or command-line strings), coerced.

        Raises:
            PlaybookError: an unknown parameter, a bad value, or a required parameter left unset.
        """
        bound = BoundParameters()
        bound.now = now or datetime.now(UTC)
        overrides = dict(overrides or {})
        for name in overrides:
            if name not in self.parameters:
                known = ", ".join(self.parameters) or "none"
                raise PlaybookError(
                    f"unknown parameter {name!r} (this playbook takes: {known})",
                    path=self.path,
                    field=f"parameters.{name}",
                )
        for name, parameter in self.parameters.items():
            if name in overrides:
                try:
                    bound[name] = parameter.coerce(overrides[name])
                except ValueError as exc:
                    raise PlaybookError(
                        f"{exc}, got {overrides[name]!r}", path=self.path, field=f"parameters.{name}"
                    ) from None
            elif parameter.required:
                raise PlaybookError(
                    "this parameter has no default: give it a value",
                    path=self.path,
                    line=parameter.line,
                    field=f"parameters.{name}",
                )
            else:
                bound[name] = parameter.default
        return bound

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "report": self.report,
            "path": self.path,
            "parameters": [p.to_dict() for p in self.parameters.values()],
            "steps": [s.to_dict() for s in self.steps],
        }


# --- the collector catalog, as playbook validation sees it --------------------------------------------

#: Collector parameters from docs/contracts.md §1.3: used when ``toolkit.collectors`` is unavailable.
CONTRACT_COLLECTORS: dict[str, dict[str, str]] = {
    "Get-HostFact": {},
    "Get-IisConfig": {"MaxWebConfigDepth": "int", "MaxWebConfigCount": "int", "MaxBytes": "int"},
    "Get-IisW3CLog": {
        "LogDirectory": "list",
        "Since": "string",
        "Until": "string",
        "HandshakeWindowSeconds": "int",
        "MaxLinesPerFile": "int",
        "MaxFiles": "int",
        "MaxBytes": "int",
    },
    "Get-IisHttpErrLog": {
        "LogDirectory": "string",
        "Since": "string",
        "Until": "string",
        "MaxLinesPerFile": "int",
        "MaxFiles": "int",
    },
    "Get-IisFailedRequestTrace": {
        "Since": "string",
        "StatusCode": "int",
        "MaxFiles": "int",
        "MaxBytes": "int",
    },
    "Get-IisContentAcl": {"MaxPaths": "int"},
    "Get-LocalUserRight": {},
    "Get-IisSpn": {},
    "Get-AuthEventLog": {"Since": "string", "Until": "string", "MaxEvents": "int"},
    "Get-IisRawArtefact": {
        "Since": "string",
        "Until": "string",
        "Kinds": "list",
        "EventLogs": "list",
        "ChunkBytes": "int",
        "MaxTotalBytes": "int",
        "Have": "list",
        "HttpErrDirectory": "string",
    },
    "Get-IisCertificate": {"MaxBindings": "int"},
}


def _normalise_type(name: Any) -> str | None:
    text = str(name or "").strip().lower().replace(" ", "")
    if text in ("int", "integer", "int32", "int64", "long", "uint32"):
        return "int"
    if text in ("float", "double", "number", "decimal"):
        return "float"
    if text in ("bool", "boolean", "switch"):
        return "bool"
    if text in ("string", "str", "datetime", "path"):
        return "string"
    if text in ("list", "string[]", "list[string]", "strings", "string_list", "array", "list[str]"):
        return "list"
    return None  # unknown: not type-checked here (Collector.bind still checks it)


@dataclass(frozen=True)
class CollectorCatalog:
    """Collector id → parameter name → normalised type (``None``: unchecked). ``binders`` holds the
    real ``Collector`` objects when the catalog came from ``toolkit.collectors``."""

    parameters: Mapping[str, Mapping[str, str | None]]
    source: str
    binders: Mapping[str, Any] = field(default_factory=dict)


def collector_catalog() -> CollectorCatalog:
    """The real catalog (``toolkit.collectors.load_catalog``) or, if it cannot load, the contract table."""
    try:
        from toolkit.collectors import load_catalog  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return CollectorCatalog(
            CONTRACT_COLLECTORS, "docs/contracts.md §1.3 (toolkit.collectors not installed)"
        )
    try:
        catalog = load_catalog()
    except Exception as exc:  # noqa: BLE001 - a broken catalog must not hide playbook errors
        return CollectorCatalog(CONTRACT_COLLECTORS, f"docs/contracts.md §1.3 (catalog failed: {exc})")
    table = {
        cid: {p.name: _normalise_type(p.type) for p in collector.parameters}
        for cid, collector in catalog.items()
    }
    return CollectorCatalog(table, "toolkit.collectors", dict(catalog))


def contract_catalog() -> CollectorCatalog:
    return CollectorCatalog(CONTRACT_COLLECTORS, "docs/contracts.md §1.3")


# --- loading -------------------------------------------------------------------------------------------

_COMPATIBLE = {
    "int": {"int"},
    "float": {"int", "float"},
    "string": {"string"},
    "bool": {"bool"},
    "list": {"list", "string"},  # PowerShell binds a single string to a string[] parameter
}


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list"
    return type(value).__name__


class _Validator:
    def __init__(self, path: str, document: Any, catalog: CollectorCatalog) -> None:
        self.path = path
        self.doc = document
        self.catalog = catalog

    def error(
        self, message: str, container: Any, key: Any, field: str, *, at_key: bool = False
    ) -> PlaybookError:
        line = (
            key_line(container, key) if at_key else line_of(container, key, start_line(container))
        ) or None
        return PlaybookError(message, path=self.path, line=line, field=field)

    def load(self) -> Playbook:
        doc = self.doc
        if not isinstance(doc, Mapping):
            raise PlaybookError(
                "a playbook must be a YAML mapping", path=self.path, line=start_line(doc) or 1
            )
        for key in doc:
            if key not in PLAYBOOK_KEYS:
                raise self.error(
                    f"unknown key {key!r} (expected {', '.join(sorted(PLAYBOOK_KEYS))})",
                    doc,
                    key,
                    str(key),
                    at_key=True,
                )
        name = doc.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise self.error("expected a name (letters, digits, '-', '_', '.')", doc, "name", "name")
        description = doc.get("description", "")
        if not isinstance(description, str):
            raise self.error("expected text", doc, "description", "description")
        report = doc.get("report", False)
        if not isinstance(report, bool):
            raise self.error("expected true or false", doc, "report", "report")
        parameters = self.parameters(doc.get("parameters"))
        steps = self.steps(doc.get("steps"), parameters)
        playbook = Playbook(
            name=name,
            description=description.strip(),
            parameters=parameters,
            steps=steps,
            report=report,
            path=self.path,
            catalog_source=self.catalog.source,
        )
        self.check_with_collectors(playbook)
        return playbook

    def parameters(self, section: Any) -> dict[str, Parameter]:
        if section is None:
            return {}
        if not isinstance(section, Mapping):
            raise self.error(
                "expected a mapping of parameter name → definition", self.doc, "parameters", "parameters"
            )
        out: dict[str, Parameter] = {}
        for name, body in section.items():
            field_name = f"parameters.{name}"
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.error("a parameter name is letters, digits and '_'", section, name, field_name)
            if not isinstance(body, Mapping):
                raise self.error("expected a mapping with type and default", section, name, field_name)
            for key in body:
                if key not in PARAMETER_KEYS:
                    raise self.error(
                        f"unknown key {key!r} (expected {', '.join(sorted(PARAMETER_KEYS))})",
                        body,
                        key,
                        f"{field_name}.{key}",
                        at_key=True,
                    )
            raw_type = body.get("type", "string")
            kind = _TYPE_ALIASES.get(str(raw_type), str(raw_type))
            if kind not in PARAM_TYPES:
                raise self.error(
                    f"unknown type {raw_type!r} (expected {', '.join(PARAM_TYPES)})",
                    body,
                    "type",
                    f"{field_name}.type",
                )
            draft = Parameter(name=name, type=kind, line=line_of(section, name) or None)  # type: ignore[arg-type]
            choices = body.get("choices")
            if choices is not None:
                if not isinstance(choices, list) or not choices:
                    raise self.error("expected a non-empty list", body, "choices", f"{field_name}.choices")
                try:
                    choices = tuple(draft.coerce(c) for c in choices)
                except ValueError as exc:
                    raise self.error(f"choice: {exc}", body, "choices", f"{field_name}.choices") from None
            bounds = {}
            for key in ("min", "max"):
                value = body.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise self.error("expected a number", body, key, f"{field_name}.{key}")
                bounds[key] = value
            description = body.get("description", "")
            if not isinstance(description, str):
                raise self.error("expected text", body, "description", f"{field_name}.description")
            draft = Parameter(
                name=name,
                type=draft.type,
                choices=choices,
                minimum=bounds["min"],
                maximum=bounds["max"],
                description=description.strip(),
                line=draft.line,
            )
            if "default" in body and body["default"] is not None:
                try:
                    default = draft.coerce(body["default"])
                except ValueError as exc:
                    raise self.error(
                        f"default: {exc}, got {body['default']!r}", body, "default", f"{field_name}.default"
                    ) from None
                out[name] = Parameter(**{**draft.__dict__, "default": default})
            else:
                out[name] = Parameter(**{**draft.__dict__, "required": True})
        return out

    def steps(self, section: Any, parameters: Mapping[str, Parameter]) -> list[Step]:
        if not isinstance(section, list) or not section:
            raise self.error("expected a non-empty list of steps", self.doc, "steps", "steps")
        steps: list[Step] = []
        seen: list[str] = []
        for index, body in enumerate(section):
            field_name = f"steps[{index}]"
            if isinstance(body, str):  # shorthand: "- Get-HostFact"
                body_map: Mapping[str, Any] = {"collector": body}
                located: Any = section
                key_for_line: Any = index
            elif isinstance(body, Mapping):
                body_map, located, key_for_line = body, body, "collector"
            else:
                raise self.error("expected a step mapping with a collector", section, index, field_name)
            for key in body_map:
                if key not in STEP_KEYS:
                    raise self.error(
                        f"unknown key {key!r} (expected {', '.join(sorted(STEP_KEYS))})",
                        body_map,
                        key,
                        f"{field_name}.{key}",
                        at_key=True,
                    )
            collector = body_map.get("collector")
            if not isinstance(collector, str) or not collector:
                raise self.error("expected a collector id", located, key_for_line, f"{field_name}.collector")
            if collector not in self.catalog.parameters:
                known = ", ".join(sorted(self.catalog.parameters))
                raise self.error(
                    f"unknown collector {collector!r} (known: {known})",
                    located,
                    key_for_line,
                    f"{field_name}.collector",
                )
            if collector in seen:
                raise self.error(
                    f"{collector} already runs in an earlier step (evidence is one file per collector)",
                    located,
                    key_for_line,
                    f"{field_name}.collector",
                )
            raw_parameters = body_map.get("parameters") or {}
            if not isinstance(raw_parameters, Mapping):
                raise self.error(
                    "expected a mapping of collector parameters",
                    body_map,
                    "parameters",
                    f"{field_name}.parameters",
                )
            self.check_parameters(collector, raw_parameters, parameters, f"{field_name}.parameters")
            when = self.condition(body_map, parameters, seen, f"{field_name}.when")
            timeout = None
            if body_map.get("timeout") is not None:
                try:
                    timeout = parse_duration(body_map["timeout"])
                except ValueError as exc:
                    raise self.error(str(exc), body_map, "timeout", f"{field_name}.timeout") from None
            description = body_map.get("description", "")
            if not isinstance(description, str):
                raise self.error("expected text", body_map, "description", f"{field_name}.description")
            steps.append(
                Step(
                    collector=collector,
                    raw_parameters=dict(raw_parameters),
                    when=when,
                    timeout=timeout,
                    description=description.strip(),
                    line=line_of(located, key_for_line) or None,
                )
            )
            seen.append(collector)
        return steps

    def check_parameters(
        self, collector: str, raw: Mapping[str, Any], parameters: Mapping[str, Parameter], field_prefix: str
    ) -> None:
        accepted = self.catalog.parameters[collector]
        for name, value in raw.items():
            field_name = f"{field_prefix}.{name}"
            if name not in accepted:
                known = ", ".join(accepted) or "none"
                raise self.error(
                    f"{collector} has no parameter {name!r} (it takes: {known})",
                    raw,
                    name,
                    field_name,
                    at_key=True,
                )
            template = Template(value)
            try:
                expressions = list(template.expressions())
            except ValueError as exc:
                raise self.error(f"bad template: {exc}", raw, name, field_name) from None
            for expression in expressions:
                if expression.name not in parameters:
                    known = ", ".join(parameters) or "none"
                    raise self.error(
                        f"template names unknown parameter {expression.name!r} (playbook "
                        f"parameters: {known})",
                        raw,
                        name,
                        field_name,
                    )
                kind: str = parameters[expression.name].type
                for filter_name in expression.filters:
                    accepts, output = FILTERS[filter_name]
                    if kind not in accepts:
                        raise self.error(
                            f"filter {filter_name!r} does not take a {kind} (parameter {expression.name!r})",
                            raw,
                            name,
                            field_name,
                        )
                    kind = output
            produced = template.result_type(parameters) or _literal_type(value)
            wanted = accepted[name]
            if wanted is not None and produced not in _COMPATIBLE[wanted]:
                hint = " (use '| ago' to turn a duration into a time)" if produced == "duration" else ""
                raise self.error(
                    f"{collector}.{name} takes {_article(wanted)}, this gives {_article(produced)}{hint}",
                    raw,
                    name,
                    field_name,
                )

    def condition(
        self,
        body: Mapping[str, Any],
        parameters: Mapping[str, Parameter],
        earlier: list[str],
        field_name: str,
    ) -> Condition | None:
        text = body.get("when")
        if text is None:
            return None
        if isinstance(text, bool):
            raise self.error(
                'expected an expression in quotes, e.g. "Get-IisW3CLog.terminal_401 > 0"',
                body,
                "when",
                field_name,
            )
        if not isinstance(text, str):
            raise self.error("expected an expression", body, "when", field_name)
        try:
            condition = Condition(text)
        except WhenSyntaxError as exc:
            raise self.error(f"bad condition: {exc}", body, "when", field_name) from None
        for collector, fact in condition.refs:
            if collector not in earlier:
                where = "a later step" if collector in self.catalog.parameters else "no step"
                raise self.error(
                    f"{collector} is {where}: a condition can only test earlier steps of the same host",
                    body,
                    "when",
                    field_name,
                )
            facts = known_facts(collector)
            if fact not in facts:
                raise self.error(
                    f"{collector} has no fact {fact!r} (facts: {', '.join(sorted(facts))})",
                    body,
                    "when",
                    field_name,
                )
        for name in condition.names:
            if name not in parameters:
                raise self.error(
                    f"unknown name {name!r}: write Collector.fact or a playbook parameter",
                    body,
                    "when",
                    field_name,
                )
        return condition

    def check_with_collectors(self, playbook: Playbook) -> None:
        """Render every step with the defaults and let the real collector validate the values."""
        if not self.catalog.binders or any(p.required for p in playbook.parameters.values()):
            return
        bound = playbook.bind()
        for index, step in enumerate(playbook.steps):
            binder = self.catalog.binders.get(step.collector)
            if binder is None:
                continue
            try:
                binder.bind(step.parameters(bound))
            except Exception as exc:  # noqa: BLE001 - the collector's own message is what matters
                raise PlaybookError(
                    f"{step.collector} rejects these parameters: {exc}",
                    path=self.path,
                    line=step.line,
                    field=f"steps[{index}].parameters",
                ) from None


def parse_playbook(text: str, path: str, *, catalog: CollectorCatalog | None = None) -> Playbook:
    """Validate playbook YAML text (``path`` is only used in messages)."""
    document = parse_yaml(text, path, error=PlaybookError)
    return _Validator(path, document, catalog or collector_catalog()).load()


def bundled_playbook_names() -> list[str]:
    """Names of the playbooks shipped with iisfleet (file names without ``.yml``), sorted."""
    folder = resources.playbooks_dir()
    return sorted(entry.name[:-4] for entry in folder.iterdir() if entry.name.endswith(".yml"))


def load_playbook(name_or_path: str | Path, *, catalog: CollectorCatalog | None = None) -> Playbook:
    """Load a bundled playbook by name (``triage-401``) or a playbook file by path.

    A value that names an existing file, or contains a path separator or ends in ``.yml``/``.yaml``, is a
    path; anything else is a bundled name.

    Raises:
        PlaybookError: not found, or does not validate (file, line and field named).
    """
    text_value = str(name_or_path)
    candidate = Path(text_value).expanduser()
    is_path = (
        isinstance(name_or_path, Path)
        or candidate.is_file()
        or "/" in text_value
        or "\\" in text_value
        or text_value.endswith((".yml", ".yaml"))
    )
    if is_path:
        if not candidate.is_file():
            raise PlaybookError("playbook file not found", path=str(candidate))
        document = load_yaml(candidate, error=PlaybookError)
        return _Validator(str(candidate), document, catalog or collector_catalog()).load()
    folder = resources.playbooks_dir()
    entry = folder.joinpath(f"{text_value}.yml")
    if not entry.is_file():
        known = ", ".join(bundled_playbook_names()) or "none"
        raise PlaybookError(f"no bundled playbook named {text_value!r} (bundled: {known})")
    return parse_playbook(entry.read_text(encoding="utf-8"), f"playbooks/{text_value}.yml", catalog=catalog)
