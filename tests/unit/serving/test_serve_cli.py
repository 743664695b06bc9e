"""`metricflow serve`'s options become its ServeConfig, and bad ones are refused by name."""

from __future__ import annotations

import argparse

import pytest

from metricflow.serving._serve_app import ServeConfig
from metricflow.serving._serve_cli import add_serve_parsers, config_from_args


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_serve_parsers(p.add_subparsers())
    return p.parse_args(["serve", "--deployment", "d", *argv])


def test_the_request_log_waits_5_s_by_default_and_the_linger_can_be_set() -> None:
    assert config_from_args(_parse()).log_linger_ms == ServeConfig.log_linger_ms == 5000
    assert config_from_args(_parse("--log-linger-ms", "250")).log_linger_ms == 250


def test_the_deployment_is_read_every_2_s_by_default_and_the_poll_can_be_set() -> None:
    assert config_from_args(_parse()).poll_s == ServeConfig.poll_s == 2.0
    assert config_from_args(_parse("--poll-s", "0.5")).poll_s == 0.5


@pytest.mark.parametrize("bad", ["0", "9", "60001"])
def test_a_linger_out_of_range_names_the_option_the_range_and_the_value(bad: str) -> None:
    with pytest.raises(SystemExit) as e:
        config_from_args(_parse("--log-linger-ms", bad))
    assert "--log-linger-ms" in str(e.value) and "10..60000" in str(e.value)
    assert str(e.value).endswith(bad)
