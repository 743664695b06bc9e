"""The one check of rule and webhook ids, mute durations and a rule's ids (HTTP, gRPC,
channels): out-of-range values are 400s naming the field, the limit and the value."""

from __future__ import annotations

from typing import Any

import pytest

from metricflow.alerts._model import MAX_MUTE_S, check_id, check_mute_s, covers, rule_from_dict
from metricflow.errors import InvalidArgument

LIMIT = 2**31 - 1


@pytest.mark.parametrize("v,want", [("17", 17), (" 17 ", 17), ("+3", 3), (0, 0),
                                    (LIMIT, LIMIT), (str(LIMIT), LIMIT)])
def test_check_id_takes_integer_ids(v: Any, want: int) -> None:
    assert check_id(v, "rule_id") == want


@pytest.mark.parametrize("v", ["99999999999999999999", LIMIT + 1, "-1", "1.5", "", "x",
                               True, 1.0, None, "9" * 5000])
def test_check_id_refuses_with_the_field_and_limit(v: Any) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_id(v, "webhook_id")
    assert e.value.http_status == 400
    assert e.value.message.startswith("webhook_id: ") and str(LIMIT) in e.value.message


@pytest.mark.parametrize("d", [1e308, float("inf"), float("nan"), 1e20, 9.3e15, -1,
                               MAX_MUTE_S + 1, "60", True, 10**100])
def test_mute_duration_is_bounded(d: Any) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_mute_s(d)
    assert e.value.message.startswith("duration_s: ") and "31622400" in e.value.message


def test_mute_duration_in_range() -> None:
    assert check_mute_s(0) == 0.0 and check_mute_s(MAX_MUTE_S) == MAX_MUTE_S


def test_rule_ids_are_canonical_and_channels_checked() -> None:
    r = rule_from_dict({"name": "r", "experiment_ids": ["01", "1", "2"], "channels": ["3", 3],
                        "condition": {"type": "failed"}})
    assert r.experiment_ids == ("1", "2") and r.channels == (3,)
    with pytest.raises(InvalidArgument) as e:
        rule_from_dict({"name": "r", "channels": ["99999999999999999999"],
                        "condition": {"type": "failed"}})
    assert e.value.message.startswith("channels: ") and str(LIMIT) in e.value.message


def test_covers() -> None:
    assert covers([], []) and covers([], ["1"])
    assert covers(["1", "2"], ["2"]) and covers(["01"], ["1"])
    assert not covers(["1"], ["1", "2"]) and not covers(["1"], [])


def test_a_webhook_url_with_credentials_is_refused_without_echoing_them() -> None:
    from metricflow.alerts._model import webhook_from_dict

    with pytest.raises(InvalidArgument, match="credentials") as e:
        webhook_from_dict({"url": "http://user:pw@127.0.0.1:18081/cred",
                           "events": ["alert.firing"]})
    assert "pw" not in str(e.value) and "pw" not in str(e.value.details)
    assert webhook_from_dict({"url": "http://127.0.0.1:18081/h",
                              "events": ["alert.firing"]}).url.endswith("/h")


_HOOK = {"url": "http://127.0.0.1:18081/h", "events": ["alert.firing"]}


@pytest.mark.parametrize("secret", ["x", "k" * 15, "short secret", "é" * 15])
def test_a_webhook_secret_shorter_than_16_is_refused_without_echoing_it(secret: str) -> None:
    from metricflow.alerts._model import MIN_SECRET, webhook_from_dict

    with pytest.raises(InvalidArgument) as e:
        webhook_from_dict({**_HOOK, "secret": secret})
    assert e.value.http_status == 400
    assert e.value.details == {"field": "secret", "limit": MIN_SECRET,
                               "received": len(secret)}
    msg = e.value.message
    assert msg.startswith("secret: ") and "at least 16" in msg and f"got {len(secret)} " in msg
    assert secret not in msg


def test_a_webhook_secret_too_long_or_not_a_string_is_refused_without_echoing_it() -> None:
    from metricflow.alerts._model import MAX_SECRET, webhook_from_dict

    long = "s3cr3t-" * 100
    with pytest.raises(InvalidArgument) as e:
        webhook_from_dict({**_HOOK, "secret": long})
    assert e.value.details == {"field": "secret", "limit": MAX_SECRET, "received": len(long)}
    assert "s3cr3t" not in e.value.message
    with pytest.raises(InvalidArgument) as e:
        webhook_from_dict({**_HOOK, "secret": 1234567890123456789})
    assert e.value.details["field"] == "secret" and "1234567" not in e.value.message


@pytest.mark.parametrize("secret", [None, "", "k" * 16, "k" * 512])
def test_no_secret_or_one_of_16_to_512_characters_is_taken(secret: Any) -> None:
    from metricflow.alerts._model import webhook_from_dict

    hook = webhook_from_dict({**_HOOK, "secret": secret})
    assert hook.secret == (secret or "")
    assert webhook_from_dict(_HOOK).secret == ""
