"""POST /ui-api/v1/compare/series (the compare overlay's binary block) over chDB."""

from __future__ import annotations

import json
import struct
import uuid

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow._wire import DecodedMetrics
from metricflow.query import QueryCore
from metricflow.store import build_insert
from metricflow.ui._api_compare import pack_overlay, ui_router


def decode(raw: bytes) -> tuple[dict, np.ndarray, np.ndarray]:
    """(header, x[B], blocks[runs, 4, B]) of the documented layout, the empty buckets
    (not sent) restored as NaN."""
    (hlen,) = struct.unpack_from("<I", raw, 0)
    header = json.loads(raw[4:4 + hlen])
    off = (4 + hlen + 7) // 8 * 8
    f = np.frombuffer(raw, "<f8", offset=off)
    b, k, n = header["buckets"], header["columns"], len(header["run_ids"])
    assert len(f) == k * (2 + 4 * n)
    cols = f[:k].astype(np.int64)
    assert (np.diff(cols) > 0).all() and (cols >= 0).all() and (cols < b).all()
    x = np.full(b, np.nan)
    x[cols] = f[k:2 * k]
    blocks = np.full((n, 4, b), np.nan)
    blocks[:, :, cols] = f[2 * k:].reshape(n, 4, k)
    assert not np.isnan(x[cols]).any()  # a sent bucket holds a point of some run
    return header, x, blocks


@pytest.fixture(scope="module")
def runs(store) -> dict[str, np.ndarray]:
    """Three runs of 'loss': 0..999, 500..1499 (with a NaN and a spike), and 0..9."""
    out = {}
    rng = np.random.default_rng(5)
    for lo, n in ((0, 1000), (500, 1000), (0, 10)):
        rid = uuid.uuid4().hex
        v = rng.normal(1.0, 0.1, n)
        if lo == 500:
            v[10] = np.nan
            v[600] = 1e6
        steps = np.arange(lo, lo + n, dtype=np.int64)
        store.insert_metrics(build_insert([DecodedMetrics(
            rid, ("loss",), np.zeros(n, np.int32), steps, steps * 10 + 1, v)]))
        out[rid] = v
    return out


def client(store) -> TestClient:
    app = FastAPI()
    app.include_router(ui_router(QueryCore(store, None)))
    return TestClient(app)


def test_dense_block_matches_downsample(store, runs) -> None:
    ids = list(runs)
    core = QueryCore(store, None)
    r = client(store).post("/ui-api/v1/compare/series",
                           json={"run_ids": ids, "key": "loss", "buckets": 37})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    header, x, blocks = decode(r.content)
    ref = {s.run_id: s for s in core.downsample(ids, "loss", 37)}
    assert header["buckets"] == 37 and sorted(header["run_ids"]) == sorted(ref)
    assert (header["step_lo"], header["step_hi"]) == (0, 1499)
    for i, rid in enumerate(header["run_ids"]):
        s = ref[rid]
        empty = np.setdiff1d(np.arange(37), s.bucket)
        assert np.isnan(blocks[i][:, empty]).all()  # no point -> NaN
        for j, col in enumerate((s.last, s.avg, s.min, s.max)):
            np.testing.assert_array_equal(blocks[i, j, s.bucket], col)
    # x: the largest last step of any run per bucket
    want = np.full(37, np.nan)
    for s in ref.values():
        want[s.bucket] = np.fmax(want[s.bucket], s.step_last)
    np.testing.assert_array_equal(x, want)
    # the spike is in its bucket's max, whatever the line shows
    spiky = header["run_ids"].index(ids[1])
    assert np.nanmax(blocks[spiky, 3]) == 1e6


def test_zoomed_range_and_runs_without_points(store, runs) -> None:
    ids = list(runs)
    r = client(store).post("/ui-api/v1/compare/series", json={
        "run_ids": ids, "key": "loss", "buckets": 10, "step_min": 1200, "step_max": 1299})
    header, x, blocks = decode(r.content)
    assert header["run_ids"] == [ids[1]]  # only the second run has steps 1200..1299
    assert (header["step_lo"], header["step_hi"]) == (1200, 1299)
    np.testing.assert_array_equal(x, np.arange(1209, 1300, 10))
    np.testing.assert_allclose(blocks[0, 0], runs[ids[1]][709:800:10])


@pytest.mark.parametrize(("body", "field"), [
    ({"run_ids": [], "key": "loss"}, "run_ids"),
    ({"run_ids": ["a" * 32] * 1001, "key": "loss"}, "run_ids"),
    ({"run_ids": ["a" * 32], "key": "loss", "buckets": 0}, "buckets"),
    ({"run_ids": ["a" * 32], "key": "loss", "buckets": 10_001}, "buckets"),
    ({"run_ids": ["a" * 32], "key": "loss", "step_min": 5, "step_max": 1}, "step_max"),
])
def test_bad_requests_name_the_field(store, body, field) -> None:
    r = client(store).post("/ui-api/v1/compare/series", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_pack_overlay_of_nothing() -> None:
    header, x, blocks = decode(pack_overlay([], 5))
    assert header["run_ids"] == [] and header["columns"] == 0 and blocks.shape == (0, 4, 5)


def test_empty_buckets_are_not_sent(store, runs) -> None:
    short = list(runs)[2]  # 10 steps into 1,000 buckets: 10 columns
    r = client(store).post("/ui-api/v1/compare/series",
                           json={"run_ids": [short], "key": "loss", "buckets": 1000})
    header, x, _ = decode(r.content)
    assert header["columns"] == 10 and len(r.content) < 1000
