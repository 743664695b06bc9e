"""Property-based fuzzing of the batch decoder, the WriteBatch scanner and the filter parsers.

Budget: METRICFLOW_FUZZ_EXAMPLES (default 150 per property) keeps the normal
suite short; set it to e.g. 20000 for a long run.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import decode_metrics
from metricflow.auth._limits import check_filter
from metricflow.auth._types import AuthConfig
from metricflow.auth._wirescan import scan_write_batch
from metricflow.errors import InvalidArgument

N = int(os.environ.get("METRICFLOW_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=N, deadline=None, derandomize=not os.environ.get(
    "METRICFLOW_FUZZ_RANDOM"), suppress_health_check=[HealthCheck.too_slow])
CFG = AuthConfig()

keys = st.lists(st.text(max_size=12), max_size=6)
blobs = st.binary(max_size=96)


@FUZZ
@given(keys, blobs, blobs, blobs, blobs)
def test_decoder_accepts_consistent_batches_or_rejects_whole(k, ki, steps, ts, vals) -> None:
    cols = pb.MetricColumns(keys=k, key_index=ki, steps=steps, timestamps=ts, values=vals)
    try:
        d = decode_metrics("a" * 32, cols)
    except InvalidArgument as e:
        assert e.details.get("field", "").startswith("metrics.")
        return
    n = d.n
    assert d.key_index.shape == d.steps.shape == d.timestamps.shape == (n,)
    assert d.values.dtype == np.dtype("<f8") and d.steps.dtype == np.dtype("<i8")
    assert n == 0 or (0 <= int(d.key_index.min()) and int(d.key_index.max()) < len(d.keys))


@FUZZ
@given(st.lists(st.integers(0, 3), max_size=40), st.integers(0, 40))
def test_truncated_columns_are_rejected(idx, cut) -> None:
    n = len(idx)
    cols = pb.MetricColumns(keys=["a", "b", "c", "d"],
                            key_index=np.array(idx, "<i4").tobytes(),
                            steps=np.arange(n, dtype="<i8").tobytes(),
                            timestamps=np.zeros(n, "<i8").tobytes(),
                            values=np.ones(n, "<f8").tobytes()[: max(0, 8 * n - cut)])
    if cut == 0 or n == 0:
        assert decode_metrics("a" * 32, cols).n == n
    else:
        try:
            decode_metrics("a" * 32, cols)
        except InvalidArgument:
            return
        raise AssertionError("a truncated column was accepted")


@FUZZ
@given(st.binary(max_size=300))
def test_write_batch_scanner_agrees_with_protobuf(raw) -> None:
    try:
        parsed = pb.WriteBatch.FromString(raw)
    except Exception:  # any parse failure
        parsed = None
    try:
        run_id, ks = scan_write_batch(raw)
    except InvalidArgument:
        return  # refused: the stream nacks the batch (fail closed)
    if parsed is not None:
        assert run_id == parsed.run_id  # authorization looks at the run the handler writes
        assert ks == list(parsed.metrics.keys)


@FUZZ
@given(st.builds(pb.WriteBatch, client_id=st.text(max_size=8), seq=st.integers(0, 2**64 - 1),
                 run_id=st.text(max_size=40),
                 metrics=st.builds(pb.MetricColumns, keys=keys, values=blobs)))
def test_scanner_reads_valid_batches(batch) -> None:
    assert scan_write_batch(batch.SerializeToString()) == (batch.run_id,
                                                           list(batch.metrics.keys))


FILTER_ALPHABET = st.sampled_from(
    list("()'\"` =<>!.,%_-") + ["metrics.", "params.", "tags.", "attributes.", " AND ", " OR ",
                                " IN ", " LIKE ", " ILIKE ", "acc", "lr", "0.5", "1e9", "NaN",
                                "status", "run_name", "'; DROP TABLE runs; --", "\x00", "é",
                                "\u202e", "\U0001f600", "\\", "NOT"])
filters = st.lists(FILTER_ALPHABET, max_size=40).map("".join)


@FUZZ
@given(st.one_of(filters, st.text(max_size=200)))
def test_run_filter_parser_only_raises_invalid_argument(text) -> None:
    from metricflow.query._grammar import parse_filter

    try:
        check_filter(text, CFG)  # the guard runs before any parser
        parse_filter(text)
    except InvalidArgument:
        pass


@FUZZ
@given(st.one_of(filters, st.text(max_size=200)))
def test_registry_filter_parser_only_raises_invalid_argument(text) -> None:
    from metricflow.store.metadata._experiments import _ATTRS
    from metricflow.store.metadata._filter import compile_filter
    from metricflow.store.metadata._tables import experiment_tags

    try:
        check_filter(text, CFG)
        compile_filter(text, _ATTRS, lambda key, cond: cond, experiment_tags.c.value)
    except InvalidArgument:
        pass


def test_deep_nesting_is_refused_before_the_parser() -> None:
    deep = "(" * 500 + "metrics.a > 1" + ")" * 500
    try:
        check_filter(deep, CFG)
    except InvalidArgument as e:
        assert "nests parentheses 500 deep" in e.message
    else:
        raise AssertionError("deep filter accepted")
