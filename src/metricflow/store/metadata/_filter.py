"""A small MLflow-style filter grammar compiled to bound-parameter SQLAlchemy.

Grammar: `clause (AND clause)*`, where a clause is `<ident> <op> <value>`:
- ident: `name`, `attributes.name`, `tags.<key>` or ``tags.`key with spaces` ``;
- op: `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`;
- value: a quoted string, an integer, or a parenthesised list of those.
Identifiers are mapped through a whitelist; values are always bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from metricflow.errors import InvalidArgument

Value = str | int | tuple[str | int, ...]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<num>-?\d+)(?![\w.])
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>(?:[A-Za-z_][\w]*)(?:\.(?:`[^`]+`|[\w\-]+))?)
    )""", re.VERBOSE)
_WORD_OPS = {"LIKE", "ILIKE", "IN"}


@dataclass(frozen=True)
class Clause:
    """One comparison: kind is "attribute" or "tag"."""

    kind: str
    key: str
    op: str
    value: Value


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidArgument(f"filter: cannot parse at {text[pos:pos + 20]!r}",
                                  field="filter_string")
        kind = m.lastgroup or ""
        tok = m.group(kind)
        if kind == "str":
            tok = re.sub(r"\\(.)", r"\1", tok[1:-1])
        elif kind == "ident" and tok.upper() in _WORD_OPS | {"AND", "NOT"}:
            kind = "word"
            tok = tok.upper()
        out.append((kind, tok))
        pos = m.end()
    return out


def parse_filter(text: str) -> list[Clause]:
    """Parse a filter string into AND-ed clauses (an empty string gives none)."""
    toks = _tokens(text or "")
    clauses: list[Clause] = []
    i = 0

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise InvalidArgument(f"filter: expected {what} in {text!r}", field="filter_string")

    while i < len(toks):
        need(toks[i][0] == "ident", "an identifier such as name or tags.<key>")
        kind, key = _split_ident(toks[i][1])
        i += 1
        need(i < len(toks), "an operator")
        if toks[i] == ("word", "NOT"):
            need(i + 1 < len(toks) and toks[i + 1] == ("word", "IN"), "IN after NOT")
            op, i = "NOT IN", i + 2
        else:
            need(toks[i][0] in ("op", "word") and toks[i][1] != "AND", "an operator")
            op, i = toks[i][1], i + 1
        if op in ("IN", "NOT IN"):
            need(i < len(toks) and toks[i] == ("punct", "("), "'(' after IN")
            items: list[str | int] = []
            i += 1
            while True:
                need(i < len(toks) and toks[i][0] in ("str", "num"), "a value in the list")
                items.append(toks[i][1] if toks[i][0] == "str" else int(toks[i][1]))
                i += 1
                need(i < len(toks) and toks[i][0] == "punct", "',' or ')'")
                i += 1
                if toks[i - 1][1] == ")":
                    break
            value: Value = tuple(items)
        else:
            need(i < len(toks) and toks[i][0] in ("str", "num"), "a quoted string or a number")
            value = toks[i][1] if toks[i][0] == "str" else int(toks[i][1])
            i += 1
        clauses.append(Clause(kind, key, op, value))
        if i < len(toks):
            need(toks[i] == ("word", "AND"), "AND between clauses (OR is not supported)")
            i += 1
            need(i < len(toks), "a clause after AND")
    return clauses


def _split_ident(ident: str) -> tuple[str, str]:
    prefix, _, rest = ident.partition(".")
    rest = rest.strip("`")
    if not rest:
        return "attribute", prefix
    if prefix.lower() in ("tags", "tag"):
        return "tag", rest
    if prefix.lower() in ("attributes", "attribute", "attr"):
        return "attribute", rest
    raise InvalidArgument(f"filter: unknown identifier prefix {prefix!r}; use tags. or "
                          "attributes.", field="filter_string")


def compare(col: sa.ColumnElement, op: str, value: Value) -> sa.ColumnElement[bool]:
    """Build `col <op> :value` with the value as a bound parameter."""
    if op in ("IN", "NOT IN"):
        vals = value if isinstance(value, tuple) else (value,)
        return col.in_(vals) if op == "IN" else col.not_in(vals)
    if isinstance(value, tuple):
        raise InvalidArgument(f"filter: {op} takes one value, not a list", field="filter_string")
    ops: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
        "=": lambda: col == value, "!=": lambda: col != value,
        "<": lambda: col < value, "<=": lambda: col <= value,
        ">": lambda: col > value, ">=": lambda: col >= value,
        "LIKE": lambda: col.like(str(value)),
        "ILIKE": lambda: sa.func.lower(col).like(sa.func.lower(str(value))),
    }
    return ops[op]()


def compile_filter(
    text: str,
    attributes: Mapping[str, tuple[sa.ColumnElement, type]],
    tag_clause: Callable[[str, sa.ColumnElement[bool]], sa.ColumnElement[bool]],
    tag_value_col: sa.ColumnElement,
) -> list[sa.ColumnElement[bool]]:
    """Compile a filter to WHERE conditions.

    Args:
        attributes: whitelist of attribute name -> (column, python type of its values).
        tag_clause: builds "an entity tag with this key satisfies condition" (an EXISTS).
        tag_value_col: the tag value column the condition is written against.
    """
    conds: list[sa.ColumnElement[bool]] = []
    for c in parse_filter(text):
        if c.kind == "tag":
            conds.append(tag_clause(c.key, compare(tag_value_col, c.op, _as(str, c))))
            continue
        if c.key not in attributes:
            raise InvalidArgument(
                f"filter: unknown attribute {c.key!r}; allowed: {', '.join(sorted(attributes))}",
                field="filter_string", received=c.key)
        col, typ = attributes[c.key]
        conds.append(compare(col, c.op, _as(typ, c)))
    return conds


def _as(typ: type, c: Clause) -> Value:
    def conv(v: str | int) -> str | int:
        if typ is int:
            try:
                n = int(v)
            except ValueError as e:
                raise InvalidArgument(f"filter: {c.key} compares with an integer, got {v!r}",
                                      field="filter_string") from e
            if not -(2**63) <= n < 2**63:  # it would overflow the SQL driver's integer
                raise InvalidArgument(f"filter: {c.key} compares with {str(v)[:40]}, outside "
                                      f"the 64-bit integer range (limit {2**63 - 1})",
                                      field="filter_string", limit=2**63 - 1,
                                      received=str(v)[:40])
            return n
        return str(v)
    if c.op in ("LIKE", "ILIKE") and typ is int:
        raise InvalidArgument(f"filter: {c.op} needs a string attribute, not {c.key}",
                              field="filter_string")
    return tuple(conv(v) for v in c.value) if isinstance(c.value, tuple) else conv(c.value)


def parse_order_by(order_by: list[str] | tuple[str, ...],
                   columns: Mapping[str, sa.ColumnElement]) -> list[sa.ColumnElement]:
    """Parse `["name ASC", "creation_time DESC"]` into ORDER BY terms (whitelisted)."""
    terms: list[sa.ColumnElement] = []
    for spec in order_by:
        parts = spec.split()
        if not parts or len(parts) > 2 or (
                len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise InvalidArgument(f"order_by {spec!r} must be '<column> [ASC|DESC]'",
                                  field="order_by", received=spec)
        key = parts[0].removeprefix("attributes.").removeprefix("attribute.")
        if key not in columns:
            raise InvalidArgument(f"order_by column {key!r} is not one of "
                                  f"{', '.join(sorted(columns))}", field="order_by",
                                  received=key)
        col = columns[key]
        terms.append(col.desc() if len(parts) == 2 and parts[1].upper() == "DESC" else col.asc())
    return terms
