"""text/csv scoring bodies: decoded like MLflow's scoring server (a header row, then rows),
typed by the signature, and every malformed body a 400 naming what is wrong."""

from __future__ import annotations

import json

import pytest

from metricflow.serving._serve_payload import (
    BadInput,
    Column,
    CsvDoc,
    Signature,
    csv_media,
    decode_csv,
    parse,
    sticky_value,
)

SIG = Signature((Column("x", "double"), Column("n", "long"), Column("flag", "boolean"),
                 Column("name", "string", required=False)))


def _bad(body: bytes, sig: Signature | None = SIG, **kw: object) -> BadInput:
    with pytest.raises(BadInput) as e:
        parse(decode_csv(body, **kw), sig)  # type: ignore[arg-type]
    return e.value


def test_csv_media_types_and_charset() -> None:
    assert csv_media("text/csv") == (True, "utf-8")
    assert csv_media("Text/CSV; charset=latin-1") == (True, "latin-1")
    assert csv_media('text/csv; header=present; charset="utf-16"') == (True, "utf-16")
    assert csv_media("application/json")[0] is False
    assert csv_media("text/csvx")[0] is False


def test_rows_are_typed_by_the_signature_in_its_column_order() -> None:
    body = b"name,flag,n,x\r\nab,true,3,1.5\r\n,False,-7,2\n"
    rows = parse(decode_csv(body), SIG)
    assert rows.columns == ("x", "n", "flag", "name")
    assert rows.rows == [[1.5, 3, True, "ab"], [2.0, -7, False, None]]
    assert type(rows.rows[1][0]) is float and type(rows.rows[0][1]) is int


def test_dataframe_to_csv_output_is_accepted_index_column_dropped() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [0.25, 3.0], "n": [1, 2], "flag": [True, False],
                       "name": ['a "quoted", name', "line\nbreak"]})
    rows = parse(decode_csv(df.to_csv().encode()), SIG)  # with pandas' unnamed index column
    assert rows.rows == [[0.25, 1, True, 'a "quoted", name'], [3.0, 2, False, "line\nbreak"]]
    assert decode_csv(df.to_csv().encode())["dataframe_split"]["columns"][0] == "Unnamed: 0"


def test_without_a_signature_columns_are_inferred_as_pandas_does() -> None:
    rows = parse(decode_csv(b"a,b,c\n1,2.5,x\n3,,y\n"), None)
    assert rows.columns == ("a", "b", "c")
    assert rows.rows == [[1, 2.5, "x"], [3, None, "y"]]


def test_a_utf8_bom_and_blank_lines_are_ignored() -> None:
    rows = parse(decode_csv("\ufeffx,n,flag\n\n1,2,0\n\n".encode()), SIG)
    assert rows.rows == [[1.0, 2, False, None]]


def test_sticky_field_reads_the_first_row() -> None:
    doc = decode_csv(b"user,x\nu-17,1\nu-18,2\n")
    assert isinstance(doc, CsvDoc) and sticky_value(doc, "user") == "u-17"


@pytest.mark.parametrize(("body", "words"), [
    (b"", "empty"),
    (b"\n\n", "empty"),
    (b"x,n,flag\n", "no data rows"),
    (b"x,n,flag\n1,2\n", "line 2 has 2 fields; the header has 3"),
    (b"x,n,flag\n1,2,true\n1,2,true,4\n", "line 3 has 4 fields"),
    (b'x,n,flag\n"1,2,true\n', "malformed"),
    (b'x,n,flag\n1,"2"x,true\n', "malformed at line 2"),
    (b"x,x,flag\n1,2,true\n", "names column 'x' twice"),
])
def test_malformed_csv_is_a_400_naming_what_is_wrong(body: bytes, words: str) -> None:
    e = _bad(body)
    assert e.status == 400 and words in str(e), str(e)
    assert json.loads(e.body())["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(("body", "column", "expected", "words"), [
    (b"x,n,flag\nabc,1,true\n", "x", "double", "got 'abc' on CSV line 2"),
    (b"x,n,flag\n1,2,true\n1,2.5,true\n", "n", "long", "got '2.5' on CSV line 3"),
    (b"x,n,flag\n1,2,maybe\n", "flag", "boolean", "got 'maybe'"),
    (b"x,n,flag\n1,,true\n", "n", "long", "required (long); got an empty cell on CSV line 2"),
    (b"x,flag\n1,true\n", "n", "long", "missing from the CSV header"),
    (b"x,n,flag\nnan,1,true\n", "x", "double", "finite"),
])
def test_cells_off_the_signature_name_column_type_and_line(body: bytes, column: str,
                                                           expected: str, words: str) -> None:
    e = _bad(body)
    assert (e.column, e.expected) == (column, expected)
    assert words in str(e), str(e)
    assert json.loads(e.body())["column"] == column


def test_encoding_errors_name_the_byte_and_charset() -> None:
    e = _bad(b"x,n,flag\n\xff,1,true\n")
    assert "not valid utf-8: byte 9" in str(e)
    assert "charset 'no-such-codec' is unknown" in str(_bad(b"x\n1\n", charset="no-such-codec"))
    rows = parse(decode_csv("name,x,n,flag\nJos\u00e9,1,2,1\n".encode("latin-1"), "latin-1"),
                 SIG)
    assert rows.rows[0][3] == "Jos\u00e9"


def test_more_lines_than_the_limit_is_a_413_naming_it() -> None:
    body = b"x,n,flag\n" + b"1,2,true\n" * 10
    assert len(parse(decode_csv(body, max_rows=11), SIG).rows) == 10
    e = _bad(body, max_rows=10)
    assert e.status == 413 and "more than 10 lines" in str(e) and "--max-csv-rows" in str(e)
    assert json.loads(e.body())["error_code"] == "REQUEST_TOO_LARGE"
    # blank lines count too, so a body of newlines stops at the limit
    assert _bad(b"x\n" + b"\n" * 50, None, max_rows=10).status == 413
