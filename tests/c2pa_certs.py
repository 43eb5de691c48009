"""Signing certificates for the C2PA tests, made here: a CA and a leaf signed by it, as C2PA
wants them (the leaf: digitalSignature, emailProtection, not a CA), and the ways to get
them wrong that an operator might."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class SigningFiles:
    cert: Path  # the leaf, then the CA
    key: Path
    ca_pem: str  # the trust anchor a reader is given


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "memeswap tests")])


def _usage(sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not sign_certs, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs, crl_sign=sign_certs,
                         encipher_only=False, decipher_only=False)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_signing_files(folder: Path, usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.EMAIL_PROTECTION,
                       days: int = 30) -> SigningFiles:
    """A CA and a leaf for it in `folder` (cert.pem: leaf + CA; key.pem: the leaf's key).
    `usage`: the leaf's extended key usage (C2PA refuses serverAuth, for one); `days`: how
    long from now the certificates stay valid (negative: expired)."""
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=days))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("memeswap test CA")).issuer_name(_name("memeswap test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(validity[0]).not_valid_after(validity[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_usage(sign_certs=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name("memeswap test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(validity[0]).not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(_pem(leaf) + _pem(ca))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return SigningFiles(cert_path, key_path, _pem(ca).decode())


def read_manifest(data: bytes, mime: str, trust_anchor: str) -> tuple[str | None, dict | None]:
    """c2pa's own reader on `data`, trusting `trust_anchor`: the validation state and the
    active manifest."""
    import io

    import c2pa

    context = c2pa.Context.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust_anchor}})
    with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
        return reader.get_validation_state(), reader.get_active_manifest()
