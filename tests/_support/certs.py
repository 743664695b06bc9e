"""Test-time X.509 certificates (a CA, a server cert for 127.0.0.1, client certs)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A throwaway certificate authority."""

    def __init__(self, cn: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5))
                     .not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, cn: str, server: bool) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) for a server (SAN 127.0.0.1/localhost) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                 False))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False)
        cert = b.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write(dir_: Path, name: str, data: bytes) -> str:
    p = dir_ / name
    p.write_bytes(data)
    return str(p)


def issue_pki(dir_: Path, ca_name: str = "metricflow test CA") -> dict:
    """A CA, a server cert for 127.0.0.1, a client cert ("ingest-node-1") from that CA
    and the same name from a rogue CA, as PEM bytes and as files in `dir_`."""
    ca, rogue = CA(ca_name), CA("rogue CA")
    scert, skey = ca.issue("127.0.0.1", server=True)
    ccert, ckey = ca.issue("ingest-node-1", server=False)
    rcert, rkey = rogue.issue("ingest-node-1", server=False)
    client_files = (write(dir_, "client.pem", ccert), write(dir_, "client.key", ckey))
    rogue_files = (write(dir_, "rogue.pem", rcert), write(dir_, "rogue.key", rkey))
    return {"ca": ca.pem, "ca_file": write(dir_, "ca.pem", ca.pem),
            "cert": write(dir_, "server.pem", scert), "key": write(dir_, "server.key", skey),
            "client": (ckey, ccert), "rogue": (rkey, rcert),
            "client_files": client_files, "rogue_files": rogue_files,
            "client_cert_file": client_files[0], "client_key_file": client_files[1],
            "rogue_cert_file": rogue_files[0], "rogue_key_file": rogue_files[1]}
