"""Deployment specs without a database: CLI variant syntax, JSON bodies, validation
messages, the JSON round trip, and the report's pure analysis step."""

from __future__ import annotations

import numpy as np
import pytest

from metricflow.entities import (
    Deployment,
    Guardrails,
    StickyKey,
    Variant,
    VariantStatus,
    deployment_from_dict,
)
from metricflow.errors import InvalidArgument
from metricflow.serving import KEY_ERROR, KEY_LATENCY, VariantData, analyze
from metricflow.serving._deploy_cli import parse_variant, report_text, show_text
from metricflow.serving._deploy_ops import guardrails_from_json, sticky_from_json
from metricflow.store.metadata import parse_sticky_key, variants_from_json
from metricflow.store.metadata._deploy_validate import check_guardrails, check_variants


@pytest.mark.parametrize("text,want", [
    ("champ=@champion:90", Variant("champ", alias="champion", weight=90)),
    ("c=@challenger", Variant("c", alias="challenger", weight=1)),
    ("p=v12:2.5", Variant("p", version="12", weight=2.5)),
    ("p=7", Variant("p", version="7")),
    ("x=http://h:8080/invocations", Variant("x", endpoint="http://h:8080/invocations")),
    ("x=https://h:8443/invocations:10", Variant("x", endpoint="https://h:8443/invocations",
                                                weight=10)),
])
def test_cli_variant_syntax(text: str, want: Variant) -> None:
    assert parse_variant(text) == want
    assert parse_variant(text, shadow=True).shadow


@pytest.mark.parametrize("text", ["nameonly", "=@a", "a=", "a=latest", "a=@x:y:z"])
def test_cli_variant_syntax_errors(text: str) -> None:
    with pytest.raises(InvalidArgument):
        check_variants([parse_variant(text)])


def test_json_bodies_refuse_unknown_keys_and_wrong_types() -> None:
    with pytest.raises(InvalidArgument, match="unknown keys"):
        variants_from_json([{"name": "a", "alias": "x", "wieght": 3}])
    with pytest.raises(InvalidArgument, match=r"variants\[0\].shadow"):
        variants_from_json([{"name": "a", "alias": "x", "shadow": "yes"}])
    with pytest.raises(InvalidArgument, match="must be a list"):
        variants_from_json({"name": "a"})
    with pytest.raises(InvalidArgument, match=r"variants\[0\].weight must be a number"):
        check_variants(variants_from_json([{"name": "a", "alias": "x", "weight": "9"}]))
    assert variants_from_json([{"name": "a", "version": 3}])[0].version == "3"
    with pytest.raises(InvalidArgument, match="unknown keys"):
        guardrails_from_json({"max_err": 0.1})
    assert sticky_from_json({"source": "header", "name": "X-U"}) == StickyKey("header", "x-u")
    assert sticky_from_json("") is None
    with pytest.raises(InvalidArgument, match="header:NAME"):
        parse_sticky_key("user_id")


def test_weights_messages_name_what_was_received() -> None:
    with pytest.raises(InvalidArgument) as e:
        check_variants([Variant("a", alias="x", weight=0), Variant("b", alias="y", weight=0)])
    assert "a=0, b=0" in e.value.message and e.value.details["field"] == "variants.weight"
    with pytest.raises(InvalidArgument) as e:
        check_guardrails(Guardrails(max_error_rate=-0.1), [Variant("a", alias="x")])
    assert "[0, 1]" in e.value.message and "-0.1" in e.value.message


def test_json_round_trip_and_fallback() -> None:
    d = Deployment("d", "m", (Variant("a", alias="x", weight=1, resolved_version="3",
                                      source="s3://b"),
                              Variant("b", version="2", weight=4),
                              Variant("s", endpoint="http://h/i", shadow=True, weight=0.5)),
                   sticky_key=StickyKey("field", "uid"),
                   guardrails=Guardrails(max_latency_p99_ms=20.0), row_version=4,
                   statuses=(VariantStatus("b", "out_of_rotation", "2", "p99", "h:1", 5),))
    assert deployment_from_dict(d.to_dict()) == d
    assert d.fallback == "b"  # the largest routed weight
    text = show_text(d)
    assert "out_of_rotation v2: p99 by h:1" in text and "mirror 50%" in text


def _variant(name: str, lat: np.ndarray, err: np.ndarray, **outcomes: np.ndarray
             ) -> VariantData:
    v = VariantData(name)
    ts = np.arange(len(lat), dtype=np.int64)
    v.add(KEY_LATENCY, ts, lat)
    v.add(KEY_ERROR, ts, err)
    for k, vals in outcomes.items():
        v.add(f"outcome.{k}", ts[:len(vals)], vals)
    return v


def test_a_variant_weight_that_is_not_a_number_is_named() -> None:
    with pytest.raises(InvalidArgument, match="weight after ':' must be a number, got 'abc'"):
        parse_variant("a=@champion:abc")
    with pytest.raises(InvalidArgument, match="weight after ':' must be a number"):
        parse_variant("a=v3:x")
    assert parse_variant("a=@champion:25").weight == 25.0
    ext = parse_variant("e=http://host:8080/invocations")  # the URL's own colons
    assert ext.endpoint == "http://host:8080/invocations" and ext.weight == 1.0


def test_analyze_groups_and_chooses_the_test_by_kind() -> None:
    rng = np.random.default_rng(1)
    a = _variant("a", rng.gamma(3, 4, 500), (rng.random(500) < 0.02).astype(float),
                 clicked=(rng.random(300) < 0.1).astype(float), spend=rng.normal(5, 1, 300))
    b = _variant("b", rng.gamma(3, 5, 200), (rng.random(200) < 0.08).astype(float),
                 clicked=(rng.random(100) < 0.2).astype(float), spend=rng.normal(6, 1, 100))
    shadow = _variant("s", rng.gamma(3, 4, 50), np.zeros(50))
    shadow.shadow = True
    rep = analyze("d", "m", {"a": a, "b": b, "s": shadow}, "a", 0.95).to_dict()
    assert [v["count"] for v in rep["variants"]] == [500, 200, 50]
    (c,) = rep["comparisons"]  # shadows are summarised, never compared
    assert c["variant"] == "b" and c["error_rate"]["fixed_horizon"]["test"] == "two_proportion_z"
    assert c["latency_ms"]["fixed_horizon"]["test"] == "welch_t"
    assert c["outcomes"]["clicked"]["kind"] == "rate"
    assert c["outcomes"]["spend"]["fixed_horizon"]["test"] == "welch_t"
    assert c["outcomes"]["spend"]["sequential"]["test"] == "msprt"
    assert rep["variants"][1]["outcomes"]["spend"]["count"] == 100
    text = report_text(rep)
    assert "b vs a:" in text and "msprt p=" in text and "(shadow)" in text
    er, lat = rep["variants"][1]["error_rate"], rep["variants"][1]["latency_ms"]
    row = next(line for line in text.splitlines() if line.startswith("b "))
    # the error rate with its Wilson interval, and the latency mean, as docs/serving.md says
    assert f"[{er['ci_low']:.4f}, {er['ci_high']:.4f}]" in row and f"{lat['mean']:.2f}" in row


def test_huge_numbers_are_refused_not_crashing() -> None:
    """JSON integers have no size limit: they are range-checked, and echoed shortened."""
    with pytest.raises(InvalidArgument) as e:
        check_variants(variants_from_json([{"name": "a", "alias": "x", "weight": 10**400}]))
    assert e.value.details["field"] == "variants[0].weight" and len(e.value.message) < 200
    for g in (Guardrails(max_error_rate=10**400), Guardrails(window_s=-10**400),
              Guardrails(max_latency_p99_ms=float("inf")), Guardrails(min_requests=10**400)):
        with pytest.raises(InvalidArgument) as e:
            check_guardrails(g, [Variant("a", alias="x")])
        assert len(e.value.message) < 200


def test_report_needs_the_data_plane_and_a_routed_baseline() -> None:
    from metricflow.errors import InvalidState, NotFound
    from metricflow.serving import build_report

    class Store:
        def get_deployment(self, name: str) -> Deployment:
            return Deployment(name, "m", (Variant("a", alias="x"),
                                          Variant("s", version="1", shadow=True)))

    with pytest.raises(InvalidState, match="query role"):
        build_report(Store(), None, "d")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="baseline 's'"):
        build_report(Store(), object(), "d", baseline="s")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="confidence"):
        build_report(Store(), None, "d", confidence=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[fe80::1]/x", "http://0.0.0.0:80/", "http://[::]/",
                                 "http://224.0.0.1/", "http://metadata.google.internal/",
                                 "http://user:pw@h.example/invocations"])
def test_endpoints_that_reach_metadata_services_or_carry_credentials_are_refused(
        url: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_variants([Variant("a", endpoint=url)])
    assert e.value.details["field"] == "variants[0].endpoint"


def test_private_and_public_endpoints_are_accepted() -> None:
    for url in ("http://127.0.0.1:8080/invocations", "https://models.example.com/invocations",
                "http://10.1.2.3/invocations", "http://[::1]:9000/invocations"):
        assert check_variants([Variant("a", endpoint=url)])[0].endpoint == url
