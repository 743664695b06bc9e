"""MLflow's scoring protocol: parse a request body into rows, check it against a signature.

A request becomes `Rows` (column names plus row-major values): cheap to make per
request, and rows of many requests concatenate into one DataFrame for one model
call (adaptive batching). A payload that does not fit the model's signature is a
`BadInput` naming the column, the expected type and what was received (a 400).

A `text/csv` body (a header row, then one line per row, as `DataFrame.to_csv` writes it)
becomes a `CsvDoc`: the same shape as a `dataframe_split` body, with the cells still
text; `parse` types them by the signature (or infers int, float or string per column
when there is none), as MLflow's scoring server does with `pandas.read_csv`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FLOATS = ("double", "float")
_INTS = ("long", "integer")
_PANDAS = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
           "boolean": "bool"}


class BadInput(Exception):
    """A payload the model cannot take (HTTP 400)."""

    def __init__(self, message: str, column: str | None = None,
                 expected: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.column = column
        self.expected = expected
        self.status = status
        """400, or 413 for a body over a size limit."""

    def body(self) -> bytes:
        d: dict[str, Any] = {"error_code": "REQUEST_TOO_LARGE" if self.status == 413
                             else "BAD_REQUEST", "message": str(self)}
        if self.column is not None:
            d["column"] = self.column
            d["expected_type"] = self.expected
        return json.dumps(d).encode()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    """MLflow's data type name: double, float, long, integer, boolean, string, ..."""
    required: bool = True


@dataclass(frozen=True, slots=True)
class Signature:
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def signature_of(pyfunc_model: Any) -> Signature | None:
    """The column signature of a pyfunc model (None: no signature or a tensor one)."""
    try:
        schema = pyfunc_model.metadata.get_input_schema()
    except Exception:  # a model without metadata: nothing to check against
        return None
    if schema is None or getattr(schema, "is_tensor_spec", lambda: False)():
        return None
    cols = []
    for spec in schema.inputs:
        name = getattr(spec, "name", None)
        if name is None:
            return None
        t = getattr(spec, "type", None)
        tname = getattr(t, "name", str(t))
        cols.append(Column(str(name), str(tname), bool(getattr(spec, "required", True))))
    return Signature(tuple(cols))


@dataclass(slots=True)
class Rows:
    columns: tuple[str, ...]
    rows: list[list[Any]]


def _typename(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(v), type(v).__name__)


def _check(col: Column, v: Any, row: int) -> Any:
    t = col.type
    if v is None:
        if col.required:
            raise BadInput(f"column {col.name!r} is required ({t}); got null in row {row}",
                           col.name, t)
        return v
    ok = ((t in _FLOATS and type(v) in (float, int)) or (t in _INTS and type(v) is int)
          or (t == "boolean" and type(v) is bool) or (t in ("string", "binary", "datetime")
                                                        and type(v) is str)
          or t not in _FLOATS + _INTS + ("boolean", "string", "binary", "datetime"))
    if ok and type(v) is float and not math.isfinite(v):
        why = "" if math.isnan(v) else " (Infinity, or a number beyond a double's range)"
        raise BadInput(f"column {col.name!r} expects a finite {t}; got {v!r}{why} in row {row}",
                       col.name, t)
    if not ok:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "..."
        raise BadInput(f"column {col.name!r} expects {t}; got {_typename(v)} {shown} in "
                       f"row {row}", col.name, t)
    return v


def _records(recs: Any, sig: Signature | None, where: str) -> Rows:
    if not isinstance(recs, list) or not recs:
        raise BadInput(f"{where} must be a non-empty list of objects, got {_typename(recs)}")
    if sig is None:
        first = recs[0]
        if not isinstance(first, dict):
            raise BadInput(f"{where}[0] must be an object, got {_typename(first)}")
        names = tuple(first)
    else:
        names = sig.names
    rows = []
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise BadInput(f"{where}[{i}] must be an object, got {_typename(r)}")
        if sig is not None:
            for c in sig.columns:
                if c.required and c.name not in r:
                    raise BadInput(f"column {c.name!r} ({c.type}) is missing from row {i}",
                                   c.name, c.type)
        rows.append([r.get(n) for n in names])
    return _checked(Rows(names, rows), sig)


def _split(d: Any, sig: Signature | None, key: str = "dataframe_split") -> Rows:
    if not isinstance(d, dict):
        raise BadInput(f"{key} must be an object with columns and data, got "
                       f"{_typename(d)}")
    data = d.get("data")
    if not isinstance(data, list) or not data:
        raise BadInput(f"{key}.data must be a non-empty list of rows")
    cols = d.get("columns")
    if cols is None:
        if sig is None:
            raise BadInput(f"{key}.columns is required: the model has no signature")
        cols = list(sig.names)
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise BadInput(f"{key}.columns must be a list of strings")
    width = len(cols)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise BadInput(f"{key}.data[{i}] must be a list of {width} values "
                           f"(one per column), got {_typename(row)}"
                           + (f" of {len(row)}" if isinstance(row, list) else ""))
    if sig is None or tuple(cols) == sig.names:
        return _checked(Rows(tuple(cols), data), sig)
    pos = {c: i for i, c in enumerate(cols)}
    for c in sig.columns:
        if c.required and c.name not in pos:
            raise BadInput(f"column {c.name!r} ({c.type}) is missing from the columns of "
                           f"{key}", c.name, c.type)
    idx = [pos.get(n) for n in sig.names]
    rows = [[None if j is None else r[j] for j in idx] for r in data]
    return _checked(Rows(sig.names, rows), sig)


def _tensorish(v: Any, sig: Signature | None, key: str) -> Rows:
    if isinstance(v, dict):  # columnar: {"col": [values...]} or {"col": value}
        cols = list(v)
        vals = [x if isinstance(x, list) else [x] for x in v.values()]
        n = len(vals[0]) if vals else 0
        if not n or any(len(x) != n for x in vals):
            raise BadInput(f"{key} as an object needs columns of one non-zero length")
        return _split({"columns": cols, "data": [list(r) for r in zip(*vals)]}, sig, key)
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return _records(v, sig, key)
    if isinstance(v, list) and v and isinstance(v[0], list):
        return _split({"data": v}, sig, key)
    if isinstance(v, list) and v and sig is not None and len(sig.columns) == 1:
        return _split({"data": [[x] for x in v]}, sig, key)
    raise BadInput(f"{key} must be a list of objects, a list of rows or an object of columns")


def _no_constant(name: str) -> Any:
    # NaN / Infinity are not JSON; Python's parser takes them unless told not to.
    raise ValueError(f"{name} is not a JSON number (send finite numbers)")


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of one /invocations body."""
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"request body is not valid JSON ({e})") from None
    except RecursionError:
        raise BadInput("request body is nested too deeply to be a scoring request") from None
    if not isinstance(doc, dict):
        raise BadInput(f"request body must be a JSON object with one of {', '.join(FORMATS)}; "
                       f"got {_typename(doc)}")
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        raise BadInput(f"request body must have exactly one of {', '.join(FORMATS)}; got keys "
                       f"{sorted(doc)[:10]}")
    return doc


def _format(doc: dict[str, Any]) -> str:
    return next(k for k in FORMATS if k in doc)


MAX_CSV_ROWS = 100_000
"""Default limit of lines (header and blank lines included) of one text/csv body."""


class CsvDoc(dict[str, Any]):
    """A decoded text/csv body: {"dataframe_split": {"columns": [...], "data": [[text or
    None, ...], ...]}} (so routing and sticky keys read it like JSON), plus each data
    row's line number; `parse` types the cells. A JSON body can never be one."""

    def __init__(self, columns: list[str], data: list[list[str | None]],
                 lines: list[int]) -> None:
        super().__init__(dataframe_split={"columns": columns, "data": data})
        self.lines = lines


def csv_media(content_type: str) -> tuple[bool, str]:
    """(is text/csv, its charset) of a Content-Type header."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "text/csv":
        return False, ""
    charset = "utf-8"
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip('"')
    return True, charset


def decode_csv(body: bytes, charset: str = "utf-8", max_rows: int = MAX_CSV_ROWS) -> CsvDoc:
    """The header and rows of a text/csv /invocations body (BadInput naming what is wrong:
    the encoding, the header, the line and its field count, or the size limit)."""
    try:
        codecs.lookup(charset)
    except LookupError:
        raise BadInput(f"Content-Type charset {charset[:40]!r} is unknown") from None
    try:
        text = body.decode(charset)
    except UnicodeDecodeError as e:
        raise BadInput(f"CSV body is not valid {charset}: byte {e.start} "
                       f"({body[e.start:e.start + 1]!r}) {e.reason}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    data: list[list[str | None]] = []
    lines: list[int] = []
    try:
        for rec in reader:
            if reader.line_num > max_rows:
                raise BadInput(f"CSV body has more than {max_rows} lines (the limit, "
                               f"--max-csv-rows); send fewer rows per request", status=413)
            if not rec or rec == [""]:
                continue  # blank lines are skipped, as pandas.read_csv does
            if header is None:
                header = _csv_header(rec, reader.line_num)
                continue
            if len(rec) != len(header):
                raise BadInput(f"CSV line {reader.line_num} has {len(rec)} fields; the header "
                               f"has {len(header)} columns")
            data.append([c if c != "" else None for c in rec])
            lines.append(reader.line_num)
    except csv.Error as e:
        raise BadInput(f"CSV body is malformed at line {reader.line_num}: {e}") from None
    if header is None:
        raise BadInput("CSV body is empty: send a header row of column names, then one line "
                       "per row")
    if not data:
        raise BadInput(f"CSV body has a header ({len(header)} columns) but no data rows")
    return CsvDoc(header, data, lines)


def _csv_header(rec: list[str], line: int) -> list[str]:
    names = [c if c != "" else f"Unnamed: {i}" for i, c in enumerate(rec)]  # as pandas
    seen: set[str] = set()
    for c in names:
        if c in seen:
            raise BadInput(f"CSV header (line {line}) names column {c[:100]!r} twice")
        seen.add(c)
    return names


def _bool(s: str) -> bool:
    low = s.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ValueError(s)


_CSV_TYPES: dict[str, Any] = {"double": float, "float": float, "long": int, "integer": int,
                              "boolean": _bool}


def _csv_cells(name: str, col: Column | None, cells: list[str | None],
               lines: list[int]) -> list[Any]:
    """One CSV column's cells typed by its signature column (None: int, else float, else
    text, as pandas infers); empty cells are None (a 400 naming the line if required)."""
    if col is None:
        for infer in (int, float):
            try:
                return [None if c is None else infer(c) for c in cells]
            except ValueError:
                pass
        return cells
    t = col.type
    conv = _CSV_TYPES.get(t)
    out: list[Any] = []
    for c, line in zip(cells, lines):
        if c is None:
            if col.required:
                raise BadInput(f"column {name!r} is required ({t}); got an empty cell on CSV "
                               f"line {line}", name, t)
            out.append(None)
        elif conv is None:
            out.append(c)  # string, binary, datetime, ...: the text itself
        else:
            try:
                out.append(conv(c))
            except ValueError:
                shown = repr(c) if len(c) <= 40 else repr(c[:40]) + "..."
                raise BadInput(f"column {name!r} expects {t}; got {shown} on CSV line {line}",
                               name, t) from None
    return out


def _csv_rows(doc: CsvDoc, sig: Signature | None) -> Rows:
    """Typed, checked rows of a CSV body: the signature's columns in its order (other
    columns, such as the index `DataFrame.to_csv` writes, are dropped), else all of them."""
    d = doc["dataframe_split"]
    cols: list[str] = d["columns"]
    data: list[list[str | None]] = d["data"]
    pos = {c: i for i, c in enumerate(cols)}
    if sig is None:
        specs: list[tuple[str, Column | None]] = [(c, None) for c in cols]
    else:
        for c in sig.columns:
            if c.required and c.name not in pos:
                raise BadInput(f"column {c.name!r} ({c.type}) is missing from the CSV header",
                               c.name, c.type)
        specs = [(c.name, c) for c in sig.columns]
    columns = [_csv_cells(n, c, [r[pos[n]] for r in data], doc.lines) if n in pos
               else [None] * len(data) for n, c in specs]
    rows = [list(r) for r in zip(*columns)]
    return _checked(Rows(tuple(n for n, _ in specs), rows), sig)


def parse(doc: dict[str, Any], sig: Signature | None) -> Rows:
    """The rows of a decoded /invocations body, checked against `sig`."""
    if isinstance(doc, CsvDoc):
        return _csv_rows(doc, sig)
    k = _format(doc)
    if k == "dataframe_split":
        return _split(doc[k], sig)
    if k == "dataframe_records":
        return _records(doc[k], sig, k)
    return _tensorish(doc[k], sig, k)


def scoring_body(doc: dict[str, Any]) -> bytes:
    """The body an endpoint variant gets: the scoring key and MLflow's `params`, nothing
    else of what the caller sent."""
    k = _format(doc)
    out: dict[str, Any] = {k: doc[k]}
    if "params" in doc:
        out["params"] = doc["params"]
    return json.dumps(out).encode()


def sticky_value(doc: dict[str, Any], field: str) -> str | None:
    """The value of input field `field` in the request's first row (None if absent)."""
    v = doc[_format(doc)]
    try:
        if isinstance(v, dict) and "columns" in v and "data" in v:  # dataframe_split
            cols = v["columns"]
            x = v["data"][0][cols.index(field)] if field in cols else None
        elif isinstance(v, dict):  # inputs/instances as columns
            x = v.get(field)
            x = x[0] if isinstance(x, list) and x else x
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            x = v[0].get(field)
        else:
            x = None
    except (TypeError, IndexError, KeyError):
        x = None
    return None if x is None else str(x)


def _checked(rows: Rows, sig: Signature | None) -> Rows:
    if sig is not None:
        cols = sig.columns
        for i, r in enumerate(rows.rows):
            for c, v in zip(cols, r):
                _check(c, v, i)
    return rows


def to_frame(columns: tuple[str, ...], rows: list[list[Any]], sig: Signature | None) -> Any:
    """One DataFrame from many requests' rows, with the signature's dtypes."""
    import numpy as np
    import pandas as pd

    if sig is not None and all(c.type in _FLOATS + _INTS for c in sig.columns):
        arr = np.asarray(rows, dtype=np.float64)
        df = pd.DataFrame(arr, columns=list(columns))
        casts = {c.name: _PANDAS[c.type] for c in sig.columns if c.type != "double"}
        return df.astype(casts) if casts else df
    df = pd.DataFrame(rows, columns=list(columns))
    if sig is not None:
        casts = {c.name: _PANDAS[c.type] for c in sig.columns
                 if c.type in _PANDAS and c.required}
        if casts:
            df = df.astype(casts)
    return df


def split_output(out: Any, sizes: list[int]) -> list[Any]:
    """Split a batched model output back into one JSON-ready part per request."""
    import numpy as np
    import pandas as pd

    parts: list[Any] = []
    pos = 0
    if isinstance(out, pd.DataFrame):
        for n in sizes:
            parts.append(out.iloc[pos:pos + n].to_dict(orient="records"))
            pos += n
        return parts
    if isinstance(out, pd.Series):
        out = out.to_numpy()
    if isinstance(out, np.ndarray):
        for n in sizes:
            parts.append(out[pos:pos + n].tolist())
            pos += n
        return parts
    if isinstance(out, list | tuple):
        for n in sizes:
            parts.append(list(out[pos:pos + n]))
            pos += n
        return parts
    raise TypeError(f"cannot split a model output of type {type(out).__name__} by request")


def first_number(part: Any) -> float | None:
    """The first numeric value of a request's predictions (logged as `prediction`)."""
    while isinstance(part, list) and part:
        part = part[0]
    if isinstance(part, dict) and part:
        part = next(iter(part.values()))
    if isinstance(part, bool):
        return float(part)
    if isinstance(part, int | float):
        return float(part)
    return None
