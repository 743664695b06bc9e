"""Input checks of the governance probe fixes that need no server: policy numbers,
page-token offsets and approval request ids."""

from __future__ import annotations

import base64
import json

import pytest

from metricflow.errors import InvalidArgument
from metricflow.governance._policy import MAX_AGE_DAYS, parse_policy
from metricflow.store.metadata._approvals import check_request_id
from metricflow.store.metadata._paging import MAX_OFFSET, decode_token, encode_token


@pytest.mark.parametrize("age", ["nan", "+nan", "inf", "-inf", "1e400",
                                 "99999999999999999999", "36500.5", "0", "-3", "true"])
def test_max_age_days_must_be_finite_and_in_range(age: str) -> None:
    with pytest.raises(InvalidArgument, match="max_age_days") as e:
        parse_policy("p", f'[[rules]]\nname = "fresh"\nmax_age_days = {age}\n')
    assert e.value.details["limit"] == MAX_AGE_DAYS


@pytest.mark.parametrize("age", ["0.5", "30", "36500"])
def test_max_age_days_in_range_is_read(age: str) -> None:
    doc = parse_policy("p", f'[[rules]]\nname = "fresh"\nmax_age_days = {age}\n')
    assert doc.rules[0].max_age_days == float(age)


def _token(offset: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


@pytest.mark.parametrize("offset", [10**21, MAX_OFFSET + 1, 2**63, True, -1, 1.5])
def test_forged_page_token_offsets_are_refused(offset: object) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token(_token(offset))


def test_page_tokens_round_trip() -> None:
    assert decode_token(encode_token(MAX_OFFSET)) == MAX_OFFSET
    assert decode_token(encode_token(100)) == 100


@pytest.mark.parametrize("rid", ["99999999999999999999", 2**63, -(2**63) - 1, "x", True,
                                 1.5])
def test_request_ids_are_int64(rid: object) -> None:
    with pytest.raises(InvalidArgument, match="request_id"):
        check_request_id(rid)


def test_request_id_text_is_read() -> None:
    assert check_request_id(" 42 ") == 42 and check_request_id(7) == 7
