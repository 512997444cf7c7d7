"""Hardened XML reading for files that came from hosts.

Host files are untrusted: entity declarations (billion laughs), external references (XXE) and DTDs
are refused by defusedxml's expat-based parser, and size, depth and element count are capped. The
result is a small tree of :class:`Node` that keeps the line of every start tag, because findings
cite ``file:line``. Namespaces are reduced to local names: none of the formats we read relies on
two namespaces sharing an element name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from toolkit.errors import InputError

MAX_XML_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 256
MAX_ELEMENTS = 2_000_000


@dataclass(eq=False)
class Node:
    """One element: local tag name, attributes, start line, children and direct text."""

    tag: str
    attrib: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def child(self, tag: str) -> Node | None:
        for node in self.children:
            if node.tag == tag:
                return node
        return None

    def all(self, tag: str) -> list[Node]:
        return [node for node in self.children if node.tag == tag]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrib.get(name, default)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if name.startswith("{") else name


class _LineTrackingBuilder:
    """Parser target that builds :class:`Node` trees and reads the line from the expat parser."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.expat = None  # set after the parser exists
        self.stack: list[Node] = []
        self.root: Node | None = None
        self.count = 0
        self._text: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.count += 1
        line = self.expat.CurrentLineNumber if self.expat is not None else 0
        if self.count > MAX_ELEMENTS:
            raise InputError(f"more than {MAX_ELEMENTS} XML elements", path=self.path, line=line)
        if len(self.stack) >= MAX_DEPTH:
            raise InputError(f"XML nested deeper than {MAX_DEPTH} levels", path=self.path, line=line)
        self._flush_text()
        node = Node(_local(tag), {_local(k): v for k, v in attrib.items()}, line)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        self._flush_text()
        self.stack.pop()

    def data(self, text: str) -> None:
        self._text.append(text)

    def _flush_text(self) -> None:
        if self._text and self.stack:
            self.stack[-1].text += "".join(self._text)
        self._text = []

    def close(self) -> Node | None:
        return self.root


def parse_xml(data: str | bytes, path: str, *, max_bytes: int = MAX_XML_BYTES) -> Node:
    """Parse one XML document from a host; raise :class:`InputError` (path, line) when unusable."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise InputError(f"file is {size} bytes, over the {max_bytes}-byte cap", path=path)
    if isinstance(data, str):
        data = data.lstrip("\ufeff")
        # expat reads str input as UTF-8 whatever the declaration says; re-encode so both agree.
        data = data.encode("utf-8", "surrogatepass")
        if data.startswith(b"<?xml"):
            end = data.find(b"?>")
            if end > 0:
                data = b'<?xml version="1.0" encoding="utf-8"' + data[end:]
    builder = _LineTrackingBuilder(path)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except InputError:
        raise
    except DefusedXmlException as exc:
        line = builder.expat.CurrentLineNumber if builder.expat is not None else None
        raise InputError(f"refused unsafe XML ({type(exc).__name__}): DTDs and entities are not accepted "
                         "in host files", path=path, line=line) from None
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        reason = str(exc).split(":", 1)[0]
        raise InputError(f"not well-formed XML ({reason})", path=path, line=line) from None
    except LookupError as exc:  # an encoding name Python does not know, e.g. encoding="UTF-9"
        raise InputError(f"unreadable XML: {exc}", path=path) from None
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise InputError(f"unreadable XML ({type(exc).__name__})", path=path) from None
    if root is None:
        raise InputError("no XML root element", path=path)
    return root
