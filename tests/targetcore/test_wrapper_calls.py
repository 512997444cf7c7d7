"""Every wrapper's call into the C# core names an existing entry point and passes its parameters in the
entry point's order with compatible types. The wrappers only run on Windows: this is what catches two
swapped arguments before a host does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.resources import ps_scripts_dir

SCRIPTS = Path(str(ps_scripts_dir()))
CALL = re.compile(r"\[IisFleet\.Target\.(\w+)\]::(\w+)\(([^)]*)\)")
PS_PARAM = re.compile(r"\[(string\[\]|string|int|long|switch|bool)\]\$(\w+)", re.I)
CS_METHOD = re.compile(r"public static [\w<>\[\]]+ (\w+)\(([^)]*)\)")
CS_CLASS = re.compile(r"\bclass (\w+)")
#: PowerShell parameter type -> the C# parameter types it binds to without loss
COMPATIBLE = {"string": {"string"}, "string[]": {"string[]"}, "int": {"int", "long"}, "long": {"long"},
              "bool": {"bool"}, "switch": {"bool"}}


def _entry_points() -> dict[tuple[str, str], list[list[tuple[str, str]]]]:
    """(class, method) -> the overloads' parameter lists [(type, name)], from ps_scripts/core/*.cs."""
    found: dict[tuple[str, str], list[list[tuple[str, str]]]] = {}
    for path in sorted((SCRIPTS / "core").glob("*.cs")):
        text = re.sub(r"\s+", " ", path.read_text("utf-8"))
        for match in CS_METHOD.finditer(text):
            classes = CS_CLASS.findall(text[:match.start()])
            if not classes:
                continue
            params = [tuple(p.strip().rsplit(" ", 1)) for p in match.group(2).split(",") if p.strip()]
            found.setdefault((classes[-1], match.group(1)), []).append(params)  # type: ignore[arg-type]
    return found


WRAPPERS = [p for p in sorted(SCRIPTS.glob("Get-*.ps1")) if CALL.search(p.read_text("utf-8"))]


def test_the_log_wrappers_call_the_core() -> None:
    assert {"Get-IisW3CLog", "Get-IisHttpErrLog"} <= {p.stem for p in WRAPPERS}


def call_problems(text: str, label: str) -> list[str]:
    ps_types = {name.lower(): kind.lower() for kind, name in PS_PARAM.findall(text.split("Set-StrictMode", 1)[0])}
    entry_points = _entry_points()
    found: list[str] = []
    for cls, method, raw_args in CALL.findall(text):
        args = [a.strip() for a in raw_args.split(",") if a.strip()]
        overloads = [p for p in entry_points.get((cls, method), []) if len(p) == len(args)]
        if not overloads:
            found.append(f"{label}: no {cls}.{method} taking {len(args)} arguments in ps_scripts/core")
            continue
        problems: list[str] = []
        for params in overloads:
            problems = []
            for arg, (cs_type, cs_name) in zip(args, params):
                if arg == "[IisFleet.Target.LocalHost]::Instance":
                    if cs_type != "IHostContext":
                        problems.append(f"{arg} passed as {cs_type} {cs_name}")
                    continue
                name = arg.lstrip("$").lower()
                if name != cs_name.lower():
                    problems.append(f"{arg} passed as {cs_name}")
                elif cs_type not in COMPATIBLE.get(ps_types.get(name, "?"), set()):
                    problems.append(f"{arg} is [{ps_types.get(name)}] but {cs_name} is {cs_type}")
            if not problems:
                break
        found += [f"{label}: {cls}.{method}: {problem}" for problem in problems]
    return found


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda p: p.stem)
def test_wrapper_arguments_match_the_entry_point(wrapper: Path) -> None:
    assert call_problems(wrapper.read_text("utf-8"), wrapper.name) == []


def test_the_check_catches_swapped_arguments_and_unknown_entry_points() -> None:
    text = (SCRIPTS / "Get-IisW3CLog.ps1").read_text("utf-8")
    swapped = text.replace("$Since, $Until", "$Until, $Since")
    assert swapped != text and "$Until passed as since" in " ".join(call_problems(swapped, "w"))
    renamed = text.replace("]::W3C(", "]::W3CLogs(")
    assert "no LogCollectors.W3CLogs" in " ".join(call_problems(renamed, "w"))
    retyped = text.replace("[int]$MaxFiles", "[string]$MaxFiles")
    assert "$MaxFiles is [string] but maxFiles is int" in " ".join(call_problems(retyped, "w"))
