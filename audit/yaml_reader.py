"""Reading an untrusted YAML file: bounded in size, depth and alias expansion, every key's line known.

Claim files are shared like papers, so they are read as untrusted input. Nothing in one is ever
executed or instantiated: only YAML's plain types are built (``yaml.SafeLoader``; ``!!python/...``
and any other tag is an error). Before anything is built the file must be

- at most ``MAX_BYTES`` long, UTF-8 text without NUL bytes,
- at most ``MAX_NODES`` values, nested at most ``MAX_DEPTH`` mappings and sequences deep (PyYAML's
  composer recurses per level),
- at most ``MAX_NODES`` nodes once its aliases are expanded (a "billion laughs" document is a few
  hundred bytes that expand to 10⁹ nodes), with no alias that contains itself,
- made of mappings whose keys are plain scalars, none given twice.

Each violation is a ``SpecError``: ``FILE:LINE: message`` (or ``FILE: message``), within a second or
two for any file that passes the size limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 100_000

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: the same rules, faster


class SpecError(Exception):
    """A user mistake in a claim file; ``str()`` is one line naming file, line and key."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))   # one line, whatever a key holds


def read_text(path: Path) -> str:
    """The file as text, or one clear error: missing, too large, binary or not UTF-8."""
    if not path.is_file():
        raise SpecError(f"{path}:1: file not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SpecError(f"{path}: {size:,} bytes; a claim file is at most {MAX_BYTES:,} bytes")
    data = path.read_bytes()
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: a binary file (NUL byte), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8") from None


def _check_events(text: str, path: Path) -> None:
    """Depth and size from the event stream, before any node is built."""
    depth = values = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, (yaml.NodeEvent)) and not isinstance(event, yaml.AliasEvent):
            values += 1
            if values > MAX_NODES:
                raise SpecError(f"{path}:{event.start_mark.line + 1}: more than {MAX_NODES:,} values in one file")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"{path}:{event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, path: Path) -> None:
    """Count nodes as if every alias were copied out, without copying (each node is sized once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:                                   # iterative post-order: no recursion limit to hit
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_NODES:
                raise SpecError(f"{path}:{node.start_mark.line + 1}: more than {MAX_NODES:,} values once its "
                                "aliases are expanded (aliases repeating aliases)")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise SpecError(f"{path}:{node.start_mark.line + 1}: an alias refers to a node that contains it")
        open_nodes.add(key)
        stack.append((node, True))
        stack += [(c, False) for c in _children(node) if id(c) not in sizes]


def _line_index(root: yaml.Node, path: Path) -> dict[tuple[Any, ...], int]:
    """Map every key path to its 1-based line; keys must be plain scalars, each given once per mapping."""
    index: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, where = stack.pop()
        index.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError(f"{path}:{line}: a key must be a plain name, not a "
                                    f"{'mapping' if isinstance(key_node, yaml.MappingNode) else 'list'}")
                key = key_node.value
                if not key.isprintable():
                    raise SpecError(f"{path}:{line}: a key must be a plain name on one line, not {key!r}")
                if key in seen and key != "<<":
                    raise SpecError(f"{path}:{line}: key {key!r} is given twice (first on line {seen[key]})")
                seen[key] = line
                index[where + (key,)] = line
                stack.append((value_node, where + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                index[where + (i,)] = item.start_mark.line + 1
                stack.append((item, where + (i,)))
    return index


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Safe-load a YAML file within the bounds above and index the line of every key path."""
    text = read_text(path)
    try:
        _check_events(text, path)
        node = yaml.compose(text, Loader=Loader)
        if node is None:
            return None, {}
        _check_expansion(node, path)
        index = _line_index(node, path)
        loader = Loader(text)
        try:
            raw = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise SpecError(f"{path}:{line}: {exc.problem}: claim files hold plain YAML values only") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = min(mark.line + 1 if mark else 1, text.count("\n") or 1)   # an unclosed bracket is met at the end
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "nesting depth" in problem:   # libyaml's own limit, met before ours on flow collections
            raise SpecError(f"{path}:{line}: nested deeper than {MAX_DEPTH} levels") from None
        raise SpecError(f"{path}:{line}: YAML syntax: {problem}") from None
    return raw, index


def locate(index: dict, loc: tuple[Any, ...]) -> int:
    """The line of the deepest known prefix of ``loc``."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in index:
            return index[loc[:end]]
    return 1
