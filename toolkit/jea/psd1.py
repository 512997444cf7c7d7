"""Read PowerShell data files (.psd1, .psrc, .pssc): one hashtable literal, nothing executable.

Only the literal subset PowerShell itself accepts in a data file is read: ``@{ key = value }`` with
values that are single- or double-quoted strings (no expansion: a ``$`` inside double quotes is refused),
integers, ``$true``/``$false``/``$null``, arrays (``@( … )`` or comma lists) and nested hashtables;
``#`` and ``<# … #>`` comments. Anything else is a ``ValueError`` naming the line, so a hand-edited file
that PowerShell would refuse is refused here too. Keys keep their spelling; look them up with
:func:`get` (PowerShell keys are case-insensitive).
"""

from __future__ import annotations

import re
from typing import Any

_BAREWORD = re.compile(r"[A-Za-z_][\w.-]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text.lstrip("\ufeff")
        self.pos = 0

    def fail(self, message: str) -> ValueError:
        line = self.text.count("\n", 0, self.pos) + 1
        return ValueError(f"line {line}: {message}")

    def skip(self, newlines: bool = True) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif self.text.startswith("<#", self.pos):
                end = self.text.find("#>", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated <# comment")
                self.pos = end + 2
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        self.skip()
        if not self.peek(token):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def document(self) -> dict[str, Any]:
        self.skip()
        value = self.hashtable()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the hashtable")
        return value

    def hashtable(self) -> dict[str, Any]:
        self.expect("@{")
        result: dict[str, Any] = {}
        while True:
            self.skip()
            while self.peek(";"):
                self.pos += 1
                self.skip()
            if self.peek("}"):
                self.pos += 1
                return result
            key = self.key()
            if any(existing.lower() == key.lower() for existing in result):
                raise self.fail(f"duplicate key {key!r}")
            self.expect("=")
            result[key] = self.value()
            self.skip(newlines=False)
            if not (self.peek(";") or self.peek("\n") or self.peek("}")):
                raise self.fail("expected a new line, ';' or '}' after a value")

    def key(self) -> str:
        if self.peek("'") or self.peek('"'):
            return self.string()
        match = _BAREWORD.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a key")
        self.pos = match.end()
        return match.group(0)

    def value(self) -> Any:
        first = self.single()
        self.skip(newlines=False)
        if not self.peek(","):
            return first
        items = [first]
        while self.peek(","):
            self.pos += 1
            self.skip()
            items.append(self.single())
            self.skip(newlines=False)
        return items

    def single(self) -> Any:
        self.skip()
        if self.peek("@{"):
            return self.hashtable()
        if self.peek("@("):
            self.pos += 2
            items: list[Any] = []
            while True:
                self.skip()
                if self.peek(")"):
                    self.pos += 1
                    return items
                if self.peek(","):
                    self.pos += 1
                    continue
                items.append(self.single())
        if self.peek("'") or self.peek('"'):
            return self.string()
        for word, literal in (("$true", True), ("$false", False), ("$null", None)):
            if self.text[self.pos:self.pos + len(word)].lower() == word:
                self.pos += len(word)
                return literal
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return float(match.group(0)) if match.group(1) else int(match.group(0))
        raise self.fail("expected a string, number, $true/$false/$null, array or hashtable")

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            char = self.text[self.pos]
            if char == quote:
                if self.text.startswith(quote * 2, self.pos):  # '' (or "") is an escaped quote
                    out.append(quote)
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            if quote == '"' and char in "$`":
                raise self.fail("expandable text ($ or `) inside a double-quoted string is not data")
            out.append(char)
            self.pos += 1


def loads(text: str) -> dict[str, Any]:
    """The hashtable a PowerShell data file holds. Raises ``ValueError`` (with the line) when it is not one."""
    return _Reader(text).document()


def get(table: dict[str, Any], key: str, default: Any = None) -> Any:
    """``table[key]`` matched case-insensitively, as PowerShell does."""
    for name, value in table.items():
        if name.lower() == key.lower():
            return value
    return default


def as_list(value: Any) -> list[Any]:
    """A scalar or a list as a list (PowerShell writes a one-element array as the element itself)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


#: Characters PowerShell also takes as single quotes, and line breaks: refused in generated literals.
_UNSAFE_IN_LITERAL = re.compile(r"[\u2018\u2019\u201a\u201b\r\n\x00]")


def quote(text: str) -> str:
    """``text`` as a single-quoted PowerShell string literal (the only escape is a doubled quote).

    Raises ``ValueError`` for typographic quotes (PowerShell treats them as quote characters too) and
    line breaks, which no name written into a generated file needs.
    """
    if _UNSAFE_IN_LITERAL.search(text):
        raise ValueError(f"{text!r} holds a typographic quote or a line break")
    return "'" + text.replace("'", "''") + "'"
