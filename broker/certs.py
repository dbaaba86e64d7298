"""A throw-away certificate authority and server certificate for the `tls` profile.

Files written into the broker directory (keys are mode 0600):

    ca.crt / ca.key          the lab CA; created once and reused, so clients keep trusting it
    server.crt / server.key  signed by the CA for 127.0.0.1, ::1, localhost, the listen
                             host and any extra names (`splitleak broker --tls-name`);
                             re-issued at every start (cheap: EC P-256 keys)

A client checks that the name it connects to is in the server certificate: a Raspberry Pi that
reaches the laptop as laptop.local or 192.168.1.20 needs that name or address added.
"""

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 365
LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "splitleak lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int):
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def _load_or_create_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("splitleak lab CA")
    cert = (_builder(name, name, key.public_key(), CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def server_names(host: str, extra=()) -> list[str]:
    """The names the server certificate is valid for: loopback, the listen host (unless it is
    a wildcard) and `extra`; ValueError for anything that is neither an IP address nor a DNS
    name."""
    names = []
    for name in (*LOCAL_NAMES, host, *extra):
        if name in WILDCARD_HOSTS or name in names:
            continue
        if not _is_ip(name) and not all(DNS_LABEL.fullmatch(x) for x in name.split(".")):
            raise ValueError(f"{name!r} is not an IP address or a DNS name for the certificate")
        names.append(name)
    return names


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n)
            for n in names]


def ensure_tls_files(directory: str | Path, host: str = "127.0.0.1", names=()) -> TlsFiles:
    """Create (or reuse) the CA and issue a fresh server certificate valid for `host`, the
    loopback names and `names` (DNS names or IP addresses)."""
    alt_names = _alt_names(server_names(host, names))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _load_or_create_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name("splitleak broker"), ca_cert.subject, key.public_key(), SERVER_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(directory / "server.key", key)
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
