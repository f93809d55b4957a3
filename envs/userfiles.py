"""Safe reading of every file and value a user hands over: one loader, bounded in time and memory.

Lab files, recipes, training configs and system files all come through :func:`load_user_file`
(YAML, or JSON when the name ends in ``.json``). It refuses, with one line that names the file
(``PATH: problem``, for ``PATH`` at most :data:`MAX_NAME_CHARS` characters):

==========================  ====================================================================
what                        limit / message
==========================  ====================================================================
missing file, directory,    "no such file", "is a directory, expected a file", "permission
unreadable path             denied", "cannot read (...)"
size                        more than ``max_bytes`` (default :data:`MAX_BYTES`, 1 MiB) is refused
                            before anything is parsed
binary or non-UTF-8 text    "binary file (NUL byte at offset N)", "not UTF-8 text (byte 0xNN at
                            offset N)"
malformed YAML / JSON       "line L, column C: not valid YAML: <problem>" (one line)
nesting                     more than :data:`MAX_DEPTH` levels of lists/mappings (counted after
                            alias expansion; JSON too, where ``json.loads`` would recurse)
alias expansion             more than :data:`MAX_NODES` nodes once every alias is expanded (a
                            nested alias bomb is refused after composing, in milliseconds, and
                            before any Python object is built); an alias inside its own anchor
duplicate mapping keys      refused (YAML would silently keep the last one: a second
                            ``max_temperature_K`` must not override the first unseen)
==========================  ====================================================================

:func:`short` quotes a value in an error message with at most a short prefix (a nested value
is summarised by :mod:`reprlib`, never expanded), and :func:`one_line` squeezes any message to
one bounded line. :func:`int_arg` and :func:`float_arg` are ``argparse`` ``type=`` validators
(finite numbers, inclusive ranges) so a bad number is refused with the flag's name.

Only the standard library and PyYAML are imported, so every layer can use this module.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "ConfigError", "UserFileError", "UserFileNotFound", "float_arg",
           "int_arg", "load_user_file", "one_line", "parse_json", "parse_yaml", "read_user_text", "short"]

MAX_BYTES = 1 << 20  # bytes: default size limit of a user file (1 MiB)
MAX_DEPTH = 64  # levels of nested lists / mappings, after alias expansion
MAX_NODES = 100_000  # YAML/JSON nodes (scalars, lists, mappings) after alias expansion
MAX_NAME_CHARS = 200  # characters of a file name quoted in a message
MAX_LINE_CHARS = 400  # characters of one error line (see one_line)
SHORT_CHARS = 60  # characters of a quoted value (see short)
_INT_ARG_CHARS = 40  # characters of an integer flag value (10**39 is beyond every limit here)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigError(ValueError):
    """A configuration is invalid: a training config, a lab file, a flag that sets one.

    The one class for every layer (hardware, agents, experiments re-export it); the message
    names the file or flag, the field and the problem. A ``ValueError``, so the CLI exits 2.
    """


class UserFileError(ValueError):
    """A user file cannot be read or parsed.

    Attributes:
        path: the file as given (shortened to :data:`MAX_NAME_CHARS` in the message).
        problem: what is wrong, in one line.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{_name(path)}: {problem}")


class UserFileNotFound(UserFileError, FileNotFoundError):
    """The file does not exist (also a ``FileNotFoundError``)."""


# -- quoting -----------------------------------------------------------------------------------

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 6
_repr.maxdict = 4
_repr.maxstring = _repr.maxother = SHORT_CHARS
_repr.maxlong = 40


def short(value: Any, limit: int = SHORT_CHARS) -> str:
    """``repr(value)`` cut to at most ``limit`` characters (``...`` marks a cut), in bounded time.

    Containers are summarised level by level (:mod:`reprlib`), so a value built from a
    billion aliases costs no more than a small one; an integer too long to print is given
    by its number of digits.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    try:
        text = _repr.repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:max(limit - 3, 1)] + "..."


def one_line(message: object, limit: int = MAX_LINE_CHARS) -> str:
    """``message`` as one line of at most ``limit`` characters (newlines become ``; ``)."""
    text = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _name(path: str | Path) -> str:
    """A file name for a message: control characters escaped, at most MAX_NAME_CHARS long."""
    text = str(path)[:MAX_NAME_CHARS + 1]
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS - 3] + "..."


# -- reading -----------------------------------------------------------------------------------

def read_user_text(path: str | Path, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped), at most ``max_bytes`` bytes.

    Raises:
        UserFileNotFound: no such file.
        UserFileError: a directory, unreadable, too large, binary or not UTF-8 (one line,
            naming the file).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise UserFileNotFound(path, "no such file") from None
    except IsADirectoryError:
        raise UserFileError(path, "is a directory, expected a file") from None
    except PermissionError:
        raise UserFileError(path, "permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc, 80)
        raise UserFileError(path, f"cannot read ({reason})") from None
    if len(data) > max_bytes:
        raise UserFileError(path, f"larger than the {max_bytes:,}-byte limit for a user file")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UserFileError(path, f"binary file (NUL byte at offset {nul}), expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserFileError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                  "save it as UTF-8") from None


def load_user_file(path: str | Path, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                   max_nodes: int = MAX_NODES) -> Any:
    """Parse a user's YAML file, or JSON when its name ends in ``.json``; ``None`` if empty.

    Raises:
        UserFileNotFound / UserFileError: see :func:`read_user_text`, :func:`parse_yaml`.
    """
    text = read_user_text(path, max_bytes)
    parse = parse_json if str(path).lower().endswith(".json") else parse_yaml
    return parse(text, path, max_depth=max_depth, max_nodes=max_nodes)


# -- YAML --------------------------------------------------------------------------------------

class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with a nesting limit while composing (the composer recurses)."""

    def __init__(self, stream: str, max_depth: int) -> None:
        super().__init__(stream)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise yaml.MarkedYAMLError(problem=f"nested deeper than {self._max_depth} levels",
                                           problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.position}: not valid YAML: unacceptable character #x{exc.character:04x}"
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    return f"{_where(exc)}not valid YAML: {one_line(problem, 120)}"


def parse_yaml(text: str, source: str | Path = "<string>", max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document with the safe loader, within the nesting and expansion limits.

    Raises:
        UserFileError: malformed, too deep, too large once aliases are expanded, a recursive
            alias or a duplicate key (one line naming ``source``, line and column).
    """
    loader = None
    try:
        loader = _LimitedLoader(text, max_depth)  # refuses control characters
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, source, max_depth, max_nodes)
        return loader.construct_document(node)
    except UserFileError:
        raise
    except yaml.YAMLError as exc:
        raise UserFileError(source, _yaml_problem(exc)) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise UserFileError(source, f"not valid YAML: {one_line(exc, 120)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_keys(node: yaml.MappingNode, source: str | Path) -> None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
            if (key.tag, key.value) in seen:
                mark = key.start_mark
                raise UserFileError(source, f"line {mark.line + 1}, column {mark.column + 1}: "
                                            f"duplicate key {short(key.value)}")
            seen.add((key.tag, key.value))


def _check_nodes(root: yaml.Node, source: str | Path, max_depth: int, max_nodes: int) -> None:
    """Refuse a node graph whose expansion is too large or too deep, or that holds a cycle.

    Each distinct node is visited once (memoised), so the check is linear in the file, not
    in the expansion: an alias bomb is measured without being expanded.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        kids = _children(node)
        if done:
            on_path.discard(nid)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
            mark = node.start_mark
            at = f"line {mark.line + 1}, column {mark.column + 1}: "
            if size[nid] > max_nodes:
                raise UserFileError(source, f"{at}more than {max_nodes:,} values once its aliases (*name) "
                                            "are expanded; refusing it (an alias bomb?)")
            if depth[nid] > max_depth:
                raise UserFileError(source, f"{at}nested deeper than {max_depth} levels once its aliases "
                                            "are expanded")
            continue
        if nid in size:
            continue
        if nid in on_path:
            mark = node.start_mark
            raise UserFileError(source, f"line {mark.line + 1}, column {mark.column + 1}: "
                                        "an alias refers to its own anchor (a recursive value)")
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
        on_path.add(nid)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)


# -- JSON --------------------------------------------------------------------------------------

def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (write a number or null)")


def parse_json(text: str, source: str | Path = "<string>", max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_NODES) -> Any:
    """Parse strict JSON (no NaN/Infinity) within the nesting and size limits.

    Raises:
        UserFileError: malformed, too deep or too many values (one line naming ``source``).
    """
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UserFileError(source, f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise UserFileError(source, f"not valid JSON: nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # NaN/Infinity, an integer of more than 4300 digits
        raise UserFileError(source, f"not valid JSON: {one_line(exc, 120)}") from None
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        count += 1
        if level > max_depth:
            raise UserFileError(source, f"not valid JSON here: nested deeper than {max_depth} levels")
        if count > max_nodes:
            raise UserFileError(source, f"more than {max_nodes:,} JSON values; refusing it")
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return data


# -- command-line numbers ----------------------------------------------------------------------

def _range_text(lo: float | None, hi: float | None, unit: str) -> str:
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        return f" in [{lo:g}, {hi:g}]{u}"
    if lo is not None:
        return f" >= {lo:g}{u}"
    if hi is not None:
        return f" <= {hi:g}{u}"
    return ""


def int_arg(lo: int | None = None, hi: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An ``argparse`` ``type=``: a decimal integer in ``[lo, hi]`` (either bound optional).

    The message (``argument --flag: ...``) names the flag and quotes a short prefix of the text.
    """
    want = f"an integer{_range_text(lo, hi, unit)}"

    def parse(text: str) -> int:
        s = text.strip()
        if len(s) > _INT_ARG_CHARS or not re.fullmatch(r"[+-]?[0-9]+", s):
            raise argparse.ArgumentTypeError(f"expected {want}, got {short(text)}")
        value = int(s)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {want}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_arg(lo: float | None = None, hi: float | None = None, unit: str = "",
              lo_open: bool = False) -> Callable[[str], float]:
    """An ``argparse`` ``type=``: a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``).

    NaN and infinities are refused (``nan > 0`` is False, so a NaN would pass a naive check).
    """
    want = f"a finite number{_range_text(lo, hi, unit)}"
    if lo_open and lo is not None:
        want = want.replace(f"[{lo:g},", f"({lo:g},").replace(f">= {lo:g}", f"> {lo:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {want}, got {short(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {want}, got {short(text)}")
        if lo is not None and (value < lo or (lo_open and value == lo)) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {want}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse
