"""An MLflow multipart upload id is bound to its creator and artifact path (finding 10).

The part route's rule only asks for an edit-scoped credential, so the upload id
must not be a capability: parts, complete and abort from another caller, or for
another path, are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

_ART = "/api/2.0/mlflow-artifacts"


@pytest.fixture(scope="module")
def runs(secured: Any) -> Iterator[dict[str, str]]:
    with secured.client("alice") as a, secured.client("bob") as b:
        ea = a.get_or_create_experiment("mpu-alice")
        eb = b.get_or_create_experiment("mpu-bob")
        yield {"alice": f"{ea}/{a.create_run(ea).info.run_id}/artifacts",
               "bob": f"{eb}/{b.create_run(eb).info.run_id}/artifacts"}


def _create(secured: Any, user: str, root: str, name: str, parts: int = 2) -> str:
    r = secured.post(user, f"{_ART}/mpu/create/{root}/dir", {"path": name, "num_parts": parts})
    assert r.status_code == 200, r.text
    return r.json()["upload_id"]


def _part(secured: Any, user: str, upload_id: str, n: int, data: bytes) -> httpx.Response:
    return httpx.put(f"{secured.http}{_ART}/mpu/part/{upload_id}/{n}", content=data,
                     headers=secured.headers(user), timeout=30)


def _complete(secured: Any, user: str, root: str, name: str, upload_id: str,
              n: int = 2) -> httpx.Response:
    return secured.post(user, f"{_ART}/mpu/complete/{root}/dir",
                        {"path": name, "upload_id": upload_id,
                         "parts": [{"part_number": i, "etag": ""} for i in range(1, n + 1)]})


def test_upload_ids_are_bound_to_their_creator_and_path(secured: Any,
                                                        runs: dict[str, str]) -> None:
    uid = _create(secured, "alice", runs["alice"], "w.bin")
    # bob knows alice's upload id: he can neither add parts nor complete or abort it
    assert _part(secured, "bob", uid, 1, b"evil").status_code == 403
    r = _complete(secured, "bob", runs["bob"], "w.bin", uid)
    assert r.status_code == 403, r.text
    r = secured.post("bob", f"{_ART}/mpu/abort/{runs['bob']}/dir",
                     {"path": "w.bin", "upload_id": uid})
    assert r.status_code == 403, r.text
    assert _part(secured, "alice", uid, 1, b"hello ").status_code == 200
    assert _part(secured, "alice", uid, 2, b"world").status_code == 200
    # alice cannot redirect her upload to another path either
    r = _complete(secured, "alice", runs["alice"], "other.bin", uid)
    assert r.status_code == 400, r.text
    r = _complete(secured, "alice", runs["alice"], "w.bin", uid)
    assert r.status_code == 200, r.text
    got = httpx.get(f"{secured.http}{_ART}/artifacts/{runs['alice']}/dir/w.bin",
                    headers=secured.headers("alice"), timeout=30)
    assert got.status_code == 200 and got.content == b"hello world"
    # a made-up upload id is unknown
    assert _part(secured, "alice", "0" * 32, 1, b"x").status_code == 404
