"""Which files of the core (``ps_scripts/core/*.cs``) a script needs: worked out from the C# source itself.

A health sweep never calls the log, FREB or raw-artefact code, yet the whole core used to cross the wire
with every host session (issue 17). A transport that knows which collectors a session will run sends only
the files their entry points reach (``toolkit.transports.core``). A missing file is a compile failure on
every host, so each rule below errs towards including a file:

* a file *declares* the top-level types of namespace ``IisFleet.Target`` it defines, and *references* every
  identifier it mentions outside comments and literals (a local variable named like a type counts: more,
  never less);
* a script (a wrapper ``ps_scripts/<id>.ps1``) names its entry types as ``IisFleet.Target.X``, anywhere in its
  text (comments too), optionally ``[IisFleet.Target.X]::Member``;
* a file that references a non-partial type needs the file declaring it;
* a *partial* type spread across files (``WindowsCollectors``: one part per Windows reader) is followed member
  by member, or the Windows part of every collector would drag in all the others: ``P.Member`` needs the parts
  that declare ``Member`` (the identifiers at a part's member level, outside parentheses and brackets, that
  precede ``( { = ; , :`` or a generic method's ``<T>(``: every member name and then some); ``P`` named any
  other way (``typeof(P)``), or a member no part declares, needs every part; a part needs another part when
  it mentions one of its members (unqualified calls between parts);
* always included: ``Core.cs`` (the loader checks ``IisFleet.Target.Core``, every wrapper's probe too) with the
  generated ``Core.Version``, and any file declaring an extension method (called without naming its class);
* an entry type no file declares means all files (an unknown name is not guessed at).

The closure of every bundled collector, and the union over every bundled playbook, is compiled under Mono
by tests/targetcore/test_core_closure.py, which also shows that leaving any file out of a collector's closure
breaks the compile (or, for the file its wrapper names, loses the entry point).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.resources import ps_scripts_dir

#: The file that declares ``IisFleet.Target.Core`` (schema, envelope): in every subset.
ALWAYS = ("Core.cs",)

_TYPE_KEYWORDS = frozenset({"class", "struct", "interface", "enum"})
#: C# 5 keywords: never a type or member name (contextual keywords are left in: more references, never less).
_KEYWORDS = frozenset("""abstract as base bool break byte case catch char checked class const continue decimal
default delegate do double else enum event explicit extern false finally fixed float for foreach goto if implicit
in int interface internal is lock long namespace new null object operator out override params private protected
public readonly ref return sbyte sealed short sizeof stackalloc static string struct switch this throw true try
typeof uint ulong unchecked unsafe ushort using virtual void volatile while""".split())
#: After these, an identifier at a type's member level is (probably) the name of the member it declares.
_MEMBER_FOLLOWERS = frozenset("({=;,<:")
_TOKEN = re.compile(r"""@"(?:[^"]|"")*"|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|@?[A-Za-z_]\w*|\d[\w.]*|\S""")
_COLLECTOR_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9-]+")
_SCRIPT_ENTRY = re.compile(r"IisFleet\.Target\.([A-Za-z_]\w*)(?:\]::([A-Za-z_]\w*))?")


@dataclass(frozen=True)
class CoreFile:
    """What one core file declares and mentions."""

    name: str
    types: frozenset[str]  # top-level types it declares, partial or not
    partial_members: dict[str, frozenset[str]]  # partial type → member names this file's part declares
    identifiers: frozenset[str]  # every identifier it mentions
    #: (type, member) for each mention of a partial type of another file: member None = named otherwise
    partial_uses: frozenset[tuple[str, str | None]]
    has_extension_methods: bool


def _tokens(text: str) -> list[str]:
    """Identifiers and punctuation of C# ``text`` (already without comments): literals, numbers and
    preprocessor lines dropped, ``@name`` as ``name``."""
    tokens = []
    for line in text.split("\n"):
        if line.lstrip().startswith("#"):
            continue
        for token in _TOKEN.findall(line):
            if token[0] in "\"'" or token.startswith('@"') or token[0].isdigit():
                continue
            tokens.append(token[1:] if token.startswith("@") else token)
    return tokens


def _is_identifier(token: str) -> bool:
    return (token[0].isalpha() or token[0] == "_") and token not in _KEYWORDS


def _after_type_arguments(tokens: list[str], start: int) -> str:
    """The token after the ``<...>`` opening at ``tokens[start]``: ``(`` for a generic method's name,
    anything else for a generic type (``IEnumerable<string> Name``)."""
    level = 0
    for index in range(start, len(tokens)):
        level += {"<": 1, ">": -1}.get(tokens[index], 0)
        if level == 0:
            return tokens[index + 1] if index + 1 < len(tokens) else ""
    return ""


def _delegate_name(tokens: list[str], start: int) -> str:
    """``delegate <return type> Name<T>(...)``: the last identifier outside ``<...>`` before ``(``."""
    name, level = "", 0
    for token in tokens[start + 1:]:
        if token == "(" and level == 0:
            break
        level += {"<": 1, ">": -1}.get(token, 0)
        if level == 0 and _is_identifier(token):
            name = token
    return name


def parse_file(name: str, text: str) -> CoreFile:
    """Read one core file's declarations and references (``text`` as written, comments allowed)."""
    from toolkit.targetcore.source import compact

    tokens = _tokens(compact(text.replace("\r\n", "\n")))
    types: set[str] = set()
    partial_members: dict[str, set[str]] = {}
    depth = parens = brackets = 0
    pending: tuple[str, bool] | None = None  # a top-level type whose body has not opened yet
    body: tuple[str, bool] | None = None  # the top-level type whose body we are in (at depth 2)
    statement_start = 0  # index of the first token of the current declaration at namespace level
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token == "{":
            depth += 1
            if depth == 1:
                statement_start = index + 1
            if depth == 2 and pending is not None:
                body, pending = pending, None
            continue
        if token == "}":
            depth -= 1
            if depth == 1:
                body, statement_start = None, index + 1
            continue
        if token in "()":
            parens += 1 if token == "(" else -1
            continue
        if token in "[]":
            brackets += 1 if token == "[" else -1
            continue
        if depth == 1 and token == ";":
            statement_start = index + 1
        if depth == 1 and (token in _TYPE_KEYWORDS and _is_identifier(following) or token == "delegate"):
            type_name = following if token != "delegate" else _delegate_name(tokens, index)
            types.add(type_name)
            partial = "partial" in tokens[statement_start:index]
            if token != "delegate":
                pending = (type_name, partial)
            if partial:
                partial_members.setdefault(type_name, set())
        if (depth == 2 and body is not None and body[1] and parens == 0 and brackets == 0 and _is_identifier(token)
                and (tokens[index - 1] in _TYPE_KEYWORDS or following in _MEMBER_FOLLOWERS
                     and (following != "<" or _after_type_arguments(tokens, index + 1) == "("))):
            partial_members[body[0]].add(token)
    identifiers = frozenset(t for t in tokens if _is_identifier(t))
    uses = set()
    for index, token in enumerate(tokens):
        if index and tokens[index - 1] in _TYPE_KEYWORDS:
            continue  # its own declaration (``partial class P``), not a use
        member = tokens[index + 2] if tokens[index + 1:index + 2] == ["."] and index + 2 < len(tokens) else None
        uses.add((token, member if member is not None and _is_identifier(member) else None))
    has_extensions = any(token == "(" and tokens[i + 1:i + 2] == ["this"] for i, token in enumerate(tokens))
    return CoreFile(name=name, types=frozenset(types),
                    partial_members={k: frozenset(v) for k, v in partial_members.items()},
                    identifiers=identifiers, partial_uses=frozenset(uses), has_extension_methods=has_extensions)


class CoreIndex:
    """Every core file's declarations, and closures over them."""

    def __init__(self, files: Iterable[tuple[str, str]]) -> None:
        self.files = {name: parse_file(name, text) for name, text in files}
        self.partial_parts: dict[str, dict[str, frozenset[str]]] = {}  # partial type → file → its members
        self.declared_in: dict[str, str] = {}  # non-partial type → file
        for core_file in self.files.values():
            for type_name in core_file.types:
                if type_name in core_file.partial_members:
                    self.partial_parts.setdefault(type_name, {})[core_file.name] = core_file.partial_members[type_name]
                else:
                    self.declared_in[type_name] = core_file.name
        self.always = frozenset(name for name, f in self.files.items()
                                if name in ALWAYS or f.has_extension_methods)

    def all_files(self) -> frozenset[str]:
        return frozenset(self.files)

    def _parts(self, type_name: str, member: str | None) -> set[str]:
        """The parts of partial ``type_name`` a use ``type_name.member`` needs (all of them when unsure)."""
        parts = self.partial_parts[type_name]
        chosen = {name for name, members in parts.items() if member is not None and member in members}
        return chosen or set(parts)

    def entry_files(self, type_name: str, member: str | None = None) -> set[str]:
        """The files a mention of ``IisFleet.Target.<type_name>`` (``::member``) needs directly."""
        if type_name in self.partial_parts:
            return self._parts(type_name, member)
        if type_name in self.declared_in:
            return {self.declared_in[type_name]}
        return set(self.files)  # not a type of the core (a typo, a newer wrapper): everything

    def _direct(self, name: str) -> set[str]:
        core_file = self.files[name]
        needed = {self.declared_in[t] for t in core_file.identifiers if t in self.declared_in}
        for type_name, member in core_file.partial_uses:
            if type_name in self.partial_parts and type_name not in core_file.partial_members:
                needed |= self._parts(type_name, member)
        for type_name in core_file.partial_members:  # unqualified calls from this part into the others
            needed |= {part for part, members in self.partial_parts[type_name].items()
                       if part != name and members & core_file.identifiers}
        return needed

    def closure(self, seeds: Iterable[str]) -> frozenset[str]:
        """``seeds`` and every file they need, directly or not, plus the files always included."""
        found: set[str] = set()
        todo = [*self.always, *seeds]
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(self._direct(name) - found)
        return frozenset(found)

    def script_files(self, script: str) -> frozenset[str]:
        """The closure of the entry types ``script`` names (``IisFleet.Target.X``, ``[...X]::Member``)."""
        seeds: set[str] = set()
        for type_name, member in script_entries(script):
            seeds |= self.entry_files(type_name, member)
        return self.closure(seeds)


def script_entries(script: str) -> list[tuple[str, str | None]]:
    """(type, member or None) for each ``IisFleet.Target.<type>`` (``]::<member>``) a PowerShell script names."""
    return [(match.group(1), match.group(2)) for match in _SCRIPT_ENTRY.finditer(script)]


@functools.cache
def core_index() -> CoreIndex:
    """The index of the bundled core (read once per process)."""
    from toolkit.targetcore.source import read_core_files

    return CoreIndex(read_core_files())


@functools.lru_cache(maxsize=256)  # transports ask for every step; the scripts are a few bundled texts
def files_for_script(script: str) -> frozenset[str]:
    """The bundled core files ``script`` needs loaded (just ``Core.cs`` and kin when it names no core type)."""
    return core_index().script_files(script)


@functools.cache
def _wrapper_files(collector_id: str) -> frozenset[str]:
    if not _COLLECTOR_ID.fullmatch(collector_id):  # a loader, bootstrap or anything not a wrapper's name
        return core_index().all_files()
    wrapper = ps_scripts_dir().joinpath(f"{collector_id}.ps1")
    if not wrapper.is_file():
        return core_index().all_files()  # not a bundled collector: nothing to read its needs from
    return files_for_script(wrapper.read_text(encoding="utf-8-sig"))


def files_for_collectors(collector_ids: Iterable[str]) -> frozenset[str]:
    """The core files the bundled collectors ``collector_ids`` need, together (an unknown id: all files)."""
    found: frozenset[str] = core_index().closure(())
    for collector_id in collector_ids:
        found |= _wrapper_files(collector_id)
    return found
