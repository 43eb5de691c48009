"""A signed C2PA manifest in every output, when the operator gives a signing certificate
and its key (`MEMESWAP_C2PA_CERT`, `MEMESWAP_C2PA_KEY`).

The manifest says what the XMP packet says (`provenance.py`), signed: one `c2pa.created`
action whose digital source type is IPTC's `compositeWithTrainedAlgorithmicMedia`. It has
no ingredients (the selfie never goes into it, nor does the template) and no thumbnail
(c2pa's default thumbnail of a GIF is several times the GIF). It is added to every attempt
of the budget search, so its ~3 KB count in the byte budget.

`ManifestSigner.from_files` checks everything once, at start-up, and says what is wrong
in one line: unreadable or oversized files, a key that does not match the certificate, a
certificate out of its validity, or one the C2PA library refuses (a self-signed
certificate, a CA certificate, a missing or wrong extended key usage: C2PA wants a leaf
with digitalSignature and, for example, emailProtection or documentSigning, followed by
its issuing chain). A trial signing of a tiny GIF is the last check.
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from memeswap.inference.errors import InputError
from memeswap.inference.media.provenance import DIGITAL_SOURCE_TYPE

MAX_PEM_BYTES = 256 * 1024  # a certificate chain or a key is a few KB
# A 1x1 GIF, for the trial signing at start-up.
_TINY_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
             b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b")


def _read_pem(path: Path, what: str, setting: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PEM_BYTES:
            raise InputError(f"the C2PA {what} ({setting}) is {size} bytes; a PEM file is a few KB", code="settings")
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the C2PA {what} ({setting}): {error.strerror or error}",
                         code="settings") from None


def _algorithm(key: Any) -> str:
    """c2pa's name for the signature algorithm of `key` (a `cryptography` private key)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        names = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in names:
            return names[key.curve.name]
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise InputError("the C2PA key (MEMESWAP_C2PA_KEY) is of a kind C2PA does not sign with: "
                     "use EC P-256/P-384/P-521, RSA or Ed25519", code="settings")


def _generator_version() -> str:
    try:
        return version("memeswap")
    except PackageNotFoundError:
        return "0"


@dataclass(frozen=True)
class ManifestSigner:
    """Signs outputs with a C2PA manifest; safe to share between threads (each signing
    makes its own native signer and builder)."""

    cert_chain: bytes  # PEM: the signing certificate first, then the certificates that issued it
    private_key: bytes = field(repr=False)  # PEM; a secret, kept out of reprs and logs
    algorithm: str  # c2pa's name: es256, ps256, ed25519, ...

    @classmethod
    def from_files(cls, cert: Path, key: Path) -> ManifestSigner:
        """The signer for these files, checked (see the module docstring); InputError with
        code "settings" and one line when they cannot sign."""
        try:
            import c2pa  # noqa: F401 (only checking that it is there)
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
        except ImportError:
            raise InputError("MEMESWAP_C2PA_CERT needs the c2pa-python package: pip install 'memeswap[provenance]'",
                             code="settings") from None
        chain = _read_pem(cert, "certificate", "MEMESWAP_C2PA_CERT")
        pem_key = _read_pem(key, "key", "MEMESWAP_C2PA_KEY")
        try:
            certificates = x509.load_pem_x509_certificates(chain)
        except ValueError:
            raise InputError("the C2PA certificate (MEMESWAP_C2PA_CERT) is not a PEM certificate chain",
                             code="settings") from None
        try:
            private_key = serialization.load_pem_private_key(pem_key, password=None)
        except (ValueError, TypeError):
            raise InputError("the C2PA key (MEMESWAP_C2PA_KEY) is not an unencrypted PEM private key",
                             code="settings") from None
        leaf = certificates[0]
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if (leaf.public_key().public_bytes(serialization.Encoding.DER, public)
                != private_key.public_key().public_bytes(serialization.Encoding.DER, public)):
            raise InputError("the C2PA key (MEMESWAP_C2PA_KEY) does not belong to the first certificate "
                             "of MEMESWAP_C2PA_CERT", code="settings")
        now = datetime.datetime.now(datetime.UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise InputError(f"the C2PA certificate (MEMESWAP_C2PA_CERT) is valid only from "
                             f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}",
                             code="settings")
        signer = cls(chain, pem_key, _algorithm(private_key))
        try:
            signer.sign(_TINY_GIF, "image/gif")
        except Exception as error:  # c2pa's refusals come as C2paError subclasses with a message
            reason = " ".join(str(error).split())[:160]
            raise InputError(f"C2PA refuses the certificate in MEMESWAP_C2PA_CERT: {reason}",
                             code="settings") from None
        return signer

    def sign(self, data: bytes, mime: str) -> bytes:
        """`data` (a file of type `mime`) with the manifest embedded."""
        import c2pa

        manifest = {
            "claim_generator_info": [{"name": "memeswap", "version": _generator_version()}],
            "format": mime,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE},
            ]}}],
        }
        context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        info = c2pa.C2paSignerInfo(self.algorithm.encode(), self.cert_chain, self.private_key, None)
        out = io.BytesIO()
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context=context) as builder:
            builder.sign(signer, mime, io.BytesIO(data), out)
        return out.getvalue()
