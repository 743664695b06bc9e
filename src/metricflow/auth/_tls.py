"""TLS for the gRPC and HTTP front ends, from PEM files; optional mTLS on both."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metricflow.errors import InvalidArgument


@dataclass(frozen=True)
class TlsConfig:
    """Certificate files of a server. Empty cert_file = plaintext."""

    cert_file: str = ""
    """PEM certificate chain presented by the server."""
    key_file: str = ""
    """PEM private key of the certificate."""
    client_ca_file: str = ""
    """PEM CA bundle; when set, gRPC and HTTPS clients must present a certificate it signed."""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise InvalidArgument("TLS needs both a certificate and a key file",
                                  field="tls_key" if self.cert_file else "tls_cert")
        if self.client_ca_file and not self.cert_file:
            raise InvalidArgument("mTLS (a client CA) needs server TLS too", field="tls_client_ca")
        for name in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise InvalidArgument(f"{name} {path!r} is not a readable file", field=name)

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


def grpc_server_credentials(tls: TlsConfig) -> Any:
    """grpc.ServerCredentials for `tls` (client certificates required when a CA is set)."""
    import grpc

    pair = (Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())
    ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca,
                                       require_client_auth=ca is not None)


def uvicorn_ssl_options(tls: TlsConfig) -> dict[str, Any]:
    """Keyword arguments of uvicorn.Config for HTTPS; with a client CA, mTLS (CERT_REQUIRED).

    A client without a certificate signed by the CA fails the TLS handshake, before
    any HTTP is read. Requests are still authenticated by their bearer token.
    """
    if not tls.enabled:
        return {}
    opts: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file,
                            "ssl_version": ssl.PROTOCOL_TLS_SERVER}
    if tls.client_ca_file:
        opts.update(ssl_ca_certs=tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return opts
