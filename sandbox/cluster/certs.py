"""Certificates for a cluster's mTLS: one private CA, a certificate for the Temporal nodes
(server and client use: frontends, history and matching present it, and the server's own worker
service presents it as a client), and client certificates for the engine's processes.

What a platform team gets from its own PKI; the tests (and a compose demo) make their own."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The name every node's certificate carries and every client checks (TEMPORAL_TLS_SERVER_NAME,
# VEND_TEMPORAL__TLS_SERVER_NAME): nodes are reached by address, so hosts are not the names.
SERVER_NAME = "temporal.vend.internal"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterCertificates:
    ca: Path
    server: Issued  # the Temporal nodes
    clients: dict[str, Issued]  # the engine's processes, by name


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "account-vending"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)


def make_certificates(
    directory: Path,
    clients: tuple[str, ...] = ("vend-worker", "vend-api", "temporal-ui", "operator"),
) -> ClusterCertificates:
    """A CA, the nodes' certificate and one client certificate per name, under ``directory``
    (keys 0600). Valid for a week: enough for any test run, short enough not to matter."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("account-vending test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        common: str, names: list[x509.GeneralName], usages: list[x509.ObjectIdentifier]
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        issued = Issued(cert=directory / f"{common}.pem", key=directory / f"{common}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, issued.key)
        return issued

    server = issue(
        "temporal-node",
        [
            x509.DNSName(SERVER_NAME),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    issued = {name: issue(name, [], [ExtendedKeyUsageOID.CLIENT_AUTH]) for name in clients}
    return ClusterCertificates(ca=ca_path, server=server, clients=issued)


def main() -> None:
    """``python -m sandbox.cluster.certs DIR``: a trial's certificates for docker-compose.yml
    (a deployment takes its own PKI's)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directory", type=Path)
    made = make_certificates(parser.parse_args().directory)
    print(f"CA {made.ca}; nodes {made.server.cert}; clients {', '.join(made.clients)}")


if __name__ == "__main__":
    main()
