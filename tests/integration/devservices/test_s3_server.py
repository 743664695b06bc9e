"""moto's S3 server over real HTTP: put/get, range get, listing; both placements."""

from __future__ import annotations

import os
import signal

import boto3  # noqa: F401 - installed by the dev extra; missing must fail
import moto.server  # noqa: F401
import pytest

from metricflow.devservices import S3Server


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_put_get_range_list(mode: str) -> None:
    with S3Server(mode=mode) as s3:  # type: ignore[arg-type]
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        bucket = s3.create_bucket()
        client = s3.client()
        body = os.urandom(256 * 1024)
        client.put_object(Bucket=bucket, Key="runs/1/model.bin", Body=body)
        assert client.get_object(Bucket=bucket, Key="runs/1/model.bin")["Body"].read() == body
        part = client.get_object(Bucket=bucket, Key="runs/1/model.bin", Range="bytes=10-19")
        assert part["Body"].read() == body[10:20]
        listed = client.list_objects_v2(Bucket=bucket, Prefix="runs/")
        assert [obj["Key"] for obj in listed["Contents"]] == ["runs/1/model.bin"]
        assert listed["Contents"][0]["Size"] == len(body)


def test_process_mode_kill_and_restart_same_port() -> None:
    with S3Server(mode="process") as s3:
        port, pid = s3.port, s3.pid
        bucket = s3.create_bucket()
        s3.stop(signal.SIGKILL)
        assert not s3.running
        s3.start()
        assert s3.port == port and s3.pid != pid
        # moto keeps objects in memory: a restarted server is empty.
        names = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
        assert bucket not in names
