"""The server never sends a request to a cloud metadata address, in any form.

An attacker-minded probe reached 169.254.169.254 through a webhook and a deployment
endpoint written as `http://[::ffff:169.254.169.254]/` (IPv4-mapped IPv6), which
`ipaddress` does not call link-local; deployment create also took the decimal,
hexadecimal and trailing-dot forms, `metadata.google.internal.` and `0`.
"""

from __future__ import annotations

import pytest

from metricflow._netguard import literal_address, never_reach
from metricflow.alerts._webhooks import forbidden_destination
from metricflow.entities import Variant
from metricflow.errors import InvalidArgument
from metricflow.serving._serve_models import check_endpoint
from metricflow.store.metadata._deploy_validate import check_variant

METADATA_FORMS = [
    "169.254.169.254", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "2852039166",
    "0xa9fea9fe", "0251.0376.0251.0376", "169.254.169.254.", "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]", "[fe80::1]", "[fd00:ec2::254]", "[::169.254.169.254]",
    "[64:ff9b:1::a9fe:a9fe]", "100.100.100.200", "192.0.0.192", "[::ffff:100.100.100.200]",
]


@pytest.mark.parametrize("host", METADATA_FORMS)
def test_every_form_of_a_metadata_address_is_refused_everywhere(host: str) -> None:
    url = f"http://{host}:18080/latest/meta-data/"
    ip = literal_address(host)
    assert ip is not None and never_reach(ip)
    assert forbidden_destination(url).startswith("refused:")
    with pytest.raises(ValueError, match="refused"):
        check_endpoint(url, allow_private=True)
    with pytest.raises(InvalidArgument, match=r"variants\[0\]\.endpoint") as e:
        check_variant(0, Variant(name="ext", endpoint=url))
    assert e.value.details["received"] == host.strip("[]").lower()


@pytest.mark.parametrize("url", ["http://0:8080/x", "http://[::]:8080/x",
                                 "http://metadata.google.internal./computeMetadata/v1/",
                                 "http://METADATA/computeMetadata/v1/"])
def test_unspecified_addresses_and_metadata_names_are_refused_at_create(url: str) -> None:
    with pytest.raises(InvalidArgument, match="refused|metadata service"):
        check_variant(0, Variant(name="ext", endpoint=url))


def test_metadata_names_are_refused_for_webhooks_and_serve() -> None:
    url = "http://metadata.google.internal./computeMetadata/v1/"
    assert "metadata service" in forbidden_destination(url)
    with pytest.raises(ValueError, match="metadata service"):
        check_endpoint(url, allow_private=True)


def test_ordinary_hosts_still_pass() -> None:
    for url in ("http://127.0.0.1:5000/invocations", "http://10.1.2.3/invocations",
                "http://[::1]:5000/invocations", "http://127.1:5000/invocations"):
        assert forbidden_destination(url) == ""  # webhooks: loopback and private allowed
        check_endpoint(url, allow_private=True)
        check_variant(0, Variant(name="ext", endpoint=url))
    with pytest.raises(ValueError, match="allow-private-endpoints"):
        check_endpoint("http://[::ffff:10.1.2.3]/invocations", allow_private=False)
    check_endpoint("http://8.8.8.8/invocations", allow_private=False)
