"""The search filter grammar: MLflow's, plus OR and parentheses.

    filter     := or_expr
    or_expr    := and_expr (OR and_expr)*
    and_expr   := primary (AND primary)*
    primary    := '(' or_expr ')' | comparison
    comparison := field op literal | field [NOT] IN '(' literal (',' literal)* ')'
                | field IS [NOT] NULL     (params and tags only)
    field      := prefix '.' key | attribute   prefix: metrics|params|tags|attributes (+ aliases);
                                          an attribute name alone is an attribute (as MLflow)
    key        := bare word | `backticked` | "double quoted"
    op         := = | != | <> | > | >= | < | <= | [NOT] LIKE | [NOT] ILIKE

With `mlflow_fields`, MLflow's `datasets.name|digest|context` (the run's dataset
inputs) and `attributes.artifact_uri` are fields too; the caller resolves them
(see `_search.py`), other callers refuse them as unknown fields.

AND binds tighter than OR. Keywords are case-insensitive. Strings are single-
or double-quoted; a quote inside is doubled or backslash-escaped. The parser
only builds a tree; `_sql.py` turns it into bound-parameter SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metricflow.errors import InvalidArgument

MAX_FILTER_LENGTH = 10_000
MAX_IN_VALUES = 10_000

PREFIXES = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params", "parameter": "params", "parameters": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes",
    "run": "attributes",
}
STRING_ATTRIBUTES = ("run_id", "run_name", "status", "user_id", "experiment_id",
                     "lifecycle_stage")
NUMERIC_ATTRIBUTES = ("start_time", "end_time")
MLFLOW_ATTRIBUTES = ("artifact_uri",)
"""Attributes only a caller passing `mlflow_fields` can filter on."""
DATASET_PREFIXES = ("datasets", "dataset")
DATASET_KEYS = ("name", "digest", "context")
ATTRIBUTE_ALIASES = {"id": "run_id", "name": "run_name", "created": "start_time",
                     "user": "user_id", "Created": "start_time"}
NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN")


@dataclass(frozen=True)
class Field:
    """A filterable/sortable field: kind is metrics, params, tags or attributes."""

    kind: str
    key: str

    @property
    def numeric(self) -> bool:
        return self.kind == "metrics" or (self.kind == "attributes"
                                          and self.key in NUMERIC_ATTRIBUTES)

    def __str__(self) -> str:
        return f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: float | int | str | tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" | "OR"
    args: tuple[Node, ...]


Node = Comparison | BoolOp

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<btick>`(?:[^`]|``)*`)
  | (?P<op>!=|<>|>=|<=|=|>|<)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w\-:/]*)
""", re.X)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def _unquote(text: str) -> str:
    q = text[0]
    body = text[1:-1].replace(q + q, q)
    return re.sub(r"\\(.)", r"\1", body) if q != "`" else body


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; an unknown character is an error at its position."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            what = "unterminated quote" if ch in "'\"`" else f"unexpected character {ch!r}"
            raise _error(text, pos, what)
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


def _error(text: str, pos: int, what: str) -> InvalidArgument:
    snippet = text[max(0, pos - 10):pos + 20]
    return InvalidArgument(f"filter: {what} at position {pos} (near {snippet!r})",
                           field="filter", position=pos, received=text[:200])


# Deeper nesting is refused before the recursive descent could exhaust the stack.
MAX_NESTING = 64


class _Parser:
    def __init__(self, text: str, mlflow_fields: bool = False) -> None:
        self.text = text
        self.mlflow_fields = mlflow_fields
        self.attributes = STRING_ATTRIBUTES + (MLFLOW_ATTRIBUTES if mlflow_fields else ())
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def fail(self, what: str, tok: Token | None = None) -> InvalidArgument:
        t = tok or self.tok
        found = "end of filter" if t.kind == "end" else repr(t.text)
        return _error(self.text, t.pos, f"{what}, found {found}")

    def kw(self, *words: str) -> bool:
        t = self.tok
        if t.kind == "word" and t.text.upper() in words:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str, what: str) -> None:
        if self.tok.kind == "punct" and self.tok.text == p:
            self.i += 1
            return
        raise self.fail(what)

    def parse(self) -> Node:
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.fail("expected AND, OR or end of filter")
        return node

    def or_expr(self) -> Node:
        args = [self.and_expr()]
        while self.kw("OR"):
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else BoolOp("OR", tuple(args))

    def and_expr(self) -> Node:
        args = [self.primary()]
        while self.kw("AND"):
            args.append(self.primary())
        return args[0] if len(args) == 1 else BoolOp("AND", tuple(args))

    def primary(self) -> Node:
        if self.tok.kind == "punct" and self.tok.text == "(":
            if self.depth >= MAX_NESTING:
                raise self.fail(f"parentheses nest deeper than the limit of {MAX_NESTING}")
            self.i += 1
            self.depth += 1
            node = self.or_expr()
            self.depth -= 1
            self.expect_punct(")", "expected ')'")
            return node
        return self.comparison()

    def field(self) -> tuple[Field, Token]:
        start = self.tok
        if start.kind != "word":
            raise self.fail("expected a field such as metrics.acc, params.lr, tags.team "
                            "or attributes.status")
        kind = PREFIXES.get(start.text.lower())
        nxt = self.toks[self.i + 1]
        if not (nxt.kind == "punct" and nxt.text == "."):
            # MLflow reads a name without a prefix as an attribute: `status = 'FINISHED'`,
            # order_by `start_time DESC`
            key = ATTRIBUTE_ALIASES.get(start.text, start.text)
            if key in self.attributes or key in NUMERIC_ATTRIBUTES:
                self.i += 1
                return Field("attributes", key), start
        if self.mlflow_fields and start.text.lower() in DATASET_PREFIXES:
            return self.dataset_field(start), start
        if kind is None:
            raise self.fail("unknown field prefix; use metrics., params., tags. or attributes. "
                            "(or an attribute name without a prefix: "
                            + ", ".join(STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES) + ")")
        self.i += 1
        self.expect_punct(".", f"expected '.' after {start.text!r}")
        parts = [self.key_part()]
        # bare keys may contain dots: metrics.train.loss
        while (self.tok.kind == "punct" and self.tok.text == "."
               and self.toks[self.i - 1].kind == "word"):
            self.i += 1
            if self.tok.kind != "word":
                raise self.fail("expected a key after '.'")
            parts.append(self.key_part())
        key = ".".join(parts)
        if kind == "attributes":
            key = ATTRIBUTE_ALIASES.get(key, key)
            if key not in self.attributes and key not in NUMERIC_ATTRIBUTES:
                raise _error(self.text, start.pos,
                             f"unknown attribute {key!r}; known: "
                             + ", ".join(self.attributes + NUMERIC_ATTRIBUTES))
        if not key:
            raise _error(self.text, start.pos, "empty key")
        return Field(kind, key), start

    def dataset_field(self, start: Token) -> Field:
        """`datasets.<name|digest|context>` (MLflow: a property of the run's dataset inputs)."""
        self.i += 1
        self.expect_punct(".", f"expected '.' after {start.text!r}")
        key = self.key_part()
        if key not in DATASET_KEYS:
            raise _error(self.text, start.pos, f"unknown dataset field {key!r}; known: "
                         + ", ".join(DATASET_KEYS))
        return Field("datasets", key)

    def key_part(self) -> str:
        t = self.tok
        if t.kind == "word":
            self.i += 1
            return t.text
        if t.kind == "btick" or (t.kind == "str" and t.text[0] == '"'):
            self.i += 1
            return _unquote(t.text)
        if t.kind == "num" and t.text.isdigit():
            self.i += 1
            return t.text
        raise self.fail("expected a key (a word, `backticked` or \"double quoted\")")

    def operator(self) -> str:
        t = self.tok
        if t.kind == "op":
            self.i += 1
            return "!=" if t.text == "<>" else t.text
        if self.kw("LIKE", "ILIKE", "IN"):
            return t.text.upper()
        if self.kw("NOT"):
            t2 = self.tok
            if self.kw("LIKE", "ILIKE", "IN"):
                return "NOT " + t2.text.upper()
            raise self.fail("expected LIKE, ILIKE or IN after NOT")
        raise self.fail("expected a comparison operator (= != > >= < <= LIKE ILIKE IN)")

    def comparison(self) -> Comparison:
        field, start = self.field()
        op_tok = self.tok
        if self.kw("IS"):  # MLflow: params./tags. IS [NOT] NULL (the run has no such key)
            op = "IS NOT NULL" if self.kw("NOT") else "IS NULL"
            if not self.kw("NULL"):
                raise self.fail("expected NULL after IS or IS NOT")
            if field.kind not in ("params", "tags"):
                raise _error(self.text, op_tok.pos, f"{op} is only supported for params. and "
                             f"tags., not {field}")
            return Comparison(field, op, "")
        op = self.operator()
        allowed = NUMERIC_OPS if field.numeric else STRING_OPS
        if op not in allowed:
            raise _error(self.text, op_tok.pos, f"operator {op} is not allowed for {field}; "
                         f"allowed: {' '.join(allowed)}")
        if field.kind == "attributes" and op.endswith("IN") and field.key != "run_id" \
                and field.key != "experiment_id" and field.key != "status":
            raise _error(self.text, op_tok.pos, f"IN is only allowed for attributes.run_id, "
                         f"attributes.status and attributes.experiment_id, not {field}")
        if op.endswith("IN"):
            return Comparison(field, op, self.value_list(field))
        return Comparison(field, op, self.literal(field))

    def literal(self, field: Field) -> float | int | str:
        t = self.tok
        if field.numeric:
            if t.kind != "num":
                raise self.fail(f"{field} compares with a number")
            self.i += 1
            if field.kind == "attributes":
                try:
                    return int(t.text)
                except ValueError:
                    raise _error(self.text, t.pos, f"{field} compares with an integer "
                                 "(milliseconds since epoch)") from None
            return float(t.text)
        if t.kind != "str":
            raise self.fail(f"{field} compares with a quoted string such as 'value'")
        self.i += 1
        return _unquote(t.text)

    def value_list(self, field: Field) -> tuple[str, ...]:
        self.expect_punct("(", "expected '(' after IN")
        values = [str(self.literal(field))]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.i += 1
            values.append(str(self.literal(field)))
        self.expect_punct(")", "expected ',' or ')' in the IN list")
        if len(values) > MAX_IN_VALUES:
            raise InvalidArgument(f"filter: an IN list may hold at most {MAX_IN_VALUES} values",
                                  field="filter", limit=MAX_IN_VALUES, received=len(values))
        return tuple(values)


def parse_filter(text: str, mlflow_fields: bool = False) -> Node | None:
    """Parse a filter string into a tree; None for an empty filter.

    `mlflow_fields`: also accept `datasets.*` and `attributes.artifact_uri`."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(f"filter is {len(text)} characters; the limit is "
                              f"{MAX_FILTER_LENGTH}", field="filter", limit=MAX_FILTER_LENGTH,
                              received=len(text))
    if not text.strip():
        return None
    return _Parser(text, mlflow_fields).parse()


def pinned_runs(text: str) -> frozenset[str] | None:
    """The run ids a filter limits a search to (`attributes.run_id = 'x'` or `IN (...)`,
    alone, in any AND, or in every branch of an OR), with their lower-case forms; None
    when it names no such set or does not parse (the search reports that). A search so
    pinned reads the rows of those runs only."""
    try:
        node = parse_filter(text)
    except InvalidArgument:
        return None
    got = _pinned(node) if node is not None else None
    return None if got is None else got | {r.lower() for r in got}


def _pinned(node: Node) -> frozenset[str] | None:
    if isinstance(node, Comparison):
        if (node.field.kind, node.field.key) != ("attributes", "run_id"):
            return None
        if node.op == "=" and isinstance(node.value, str):
            return frozenset((node.value,))
        if node.op == "IN" and isinstance(node.value, tuple):
            return frozenset(node.value)
        return None
    sets = [_pinned(a) for a in node.args]
    if node.op == "AND":
        known = [x for x in sets if x is not None]
        return min(known, key=len) if known else None
    if any(x is None for x in sets):
        return None
    return frozenset().union(*sets)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    ascending: bool


MAX_ORDER_TERMS = 10
"""Each term can be a join of its own: 50 took 16 s on two runs, 1,000 passed chDB's
query size limit."""


def parse_order_by(clauses: list[str]) -> list[OrderTerm]:
    """Parse ['metrics.acc DESC', 'attributes.start_time'] into terms (default ASC)."""
    if len(clauses) > MAX_ORDER_TERMS:
        raise InvalidArgument(f"order_by takes at most {MAX_ORDER_TERMS} terms, got "
                              f"{len(clauses)}", field="order_by", limit=MAX_ORDER_TERMS,
                              received=len(clauses))
    terms = []
    for clause in clauses:
        try:
            p = _Parser(clause)
            field, _ = p.field()
            asc = not p.kw("DESC")
            if asc:
                p.kw("ASC")
            if p.tok.kind != "end":
                raise p.fail("expected ASC, DESC or end of order_by clause")
        except InvalidArgument as e:
            raise InvalidArgument(e.message.replace("filter:", "order_by:", 1),
                                  field="order_by", received=clause[:200]) from None
        terms.append(OrderTerm(field, asc))
    return terms
