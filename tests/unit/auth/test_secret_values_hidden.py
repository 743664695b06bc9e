"""describe (auth/_http_input.py): a rejected value of a secret-like field is never echoed."""

from __future__ import annotations

import pytest

from metricflow.auth._http_input import describe


@pytest.mark.parametrize("loc,value", [
    (("body", "secret"), 918273645546372819),
    (("body", "Secret"), "a-real-secret-value-1"),
    (("body", "client_secret", 0), "a-real-secret-value-1"),
    (("body", "password"), ["a-real-secret-value-1"]),
    (("query", "api_token"), "a-real-secret-value-1"),
])
def test_secret_like_fields_name_the_type_but_not_the_value(loc: tuple, value: object) -> None:
    field, msg = describe({"loc": loc, "type": "string_type", "msg": "Input should be a "
                           "valid string", "input": value})
    assert str(value) not in msg and "a-real-secret" not in msg
    assert "not shown" in msg and f"'{field}'" in msg and "expected a valid string" in msg


def test_other_fields_still_show_what_was_received() -> None:
    _, msg = describe({"loc": ("body", "name"), "type": "string_type",
                       "msg": "Input should be a valid string", "input": 12345})
    assert "Invalid value 12345 (a JSON number) for parameter 'name'" in msg
