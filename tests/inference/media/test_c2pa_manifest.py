"""A signed C2PA manifest in each output format, read back by c2pa's own Reader trusting the
test CA; the manifest counts in the byte budget; certificates C2PA would refuse are refused
at start with one line."""

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from memeswap.inference.errors import InputError
from memeswap.inference.media.c2pa_manifest import ManifestSigner
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.provenance import DIGITAL_SOURCE_TYPE
from memeswap.inference.pipeline import AI_LABEL
from tests.c2pa_certs import make_signing_files, read_manifest
from tests.inference.media.frames import moving_frames
from tests.inference.media.metadata_readers import exiftool, xmp_in_container

FORMATS = {"gif": "image/gif", "mp4": "video/mp4", "webp": "image/webp"}


@pytest.fixture(scope="module")
def signing(tmp_path_factory):
    files = make_signing_files(tmp_path_factory.mktemp("c2pa"))
    return files, ManifestSigner.from_files(files.cert, files.key)


def created_actions(manifest: dict) -> list[dict]:
    actions = [action for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
               for action in assertion["data"]["actions"]]
    return [action for action in actions if action["action"] == "c2pa.created"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_carries_a_trusted_manifest_beside_the_xmp(fmt, signing, tmp_path):
    files, signer = signing
    media = encode_frames(moving_frames(12, 96, 64), fmt, fps=12, comment=AI_LABEL, signer=signer)
    state, manifest = read_manifest(media.data, FORMATS[fmt], files.ca_pem)
    assert state == "Trusted"
    assert [action["digitalSourceType"] for action in created_actions(manifest)] == [DIGITAL_SOURCE_TYPE]
    assert manifest["claim_generator_info"][0]["name"] == "memeswap"
    assert not any(assertion["label"].startswith("c2pa.ingredient") for assertion in manifest["assertions"])
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(media.data)
    assert exiftool(path)["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert DIGITAL_SOURCE_TYPE.encode() in xmp_in_container(media.data, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_manifest_counts_in_the_byte_budget(fmt, signing):
    """A budget that the unsigned file fits and the signed one (~3 KB more) does not: the
    encoder steps down so that the signed file fits."""
    files, signer = signing
    frames = moving_frames(48, 320, 240)
    unsigned = encode_frames(frames, fmt, fps=12, comment=AI_LABEL)
    budget = len(unsigned.data) + 500
    fitted = encode_frames(frames, fmt, fps=12, max_bytes=budget, comment=AI_LABEL, signer=signer)
    assert len(fitted.data) <= budget
    assert read_manifest(fitted.data, FORMATS[fmt], files.ca_pem)[0] == "Trusted"


def test_a_certificate_for_another_use_is_refused_in_one_line(tmp_path):
    files = make_signing_files(tmp_path, usage=ExtendedKeyUsageOID.SERVER_AUTH)  # a web server's
    with pytest.raises(InputError, match="C2PA refuses the certificate in MEMESWAP_C2PA_CERT") as refused:
        ManifestSigner.from_files(files.cert, files.key)
    assert refused.value.code == "settings" and "\n" not in str(refused.value)


def test_a_key_of_another_certificate_is_refused(tmp_path):
    files = make_signing_files(tmp_path / "a")
    other = make_signing_files(tmp_path / "b")
    with pytest.raises(InputError, match="does not belong to the first certificate"):
        ManifestSigner.from_files(files.cert, other.key)


def test_an_expired_certificate_is_refused(tmp_path):
    files = make_signing_files(tmp_path, days=-1)
    with pytest.raises(InputError, match="is valid only from"):
        ManifestSigner.from_files(files.cert, files.key)


@pytest.mark.parametrize("content, expected", [(b"not a certificate", "not a PEM certificate chain"),
                                               (b"A" * (300 * 1024), "a PEM file is a few KB")])
def test_a_certificate_file_that_is_no_certificate_is_refused(tmp_path, content, expected):
    files = make_signing_files(tmp_path)
    files.cert.write_bytes(content)
    with pytest.raises(InputError, match=expected):
        ManifestSigner.from_files(files.cert, files.key)


def test_the_key_stays_out_of_the_signers_repr(signing):
    _, signer = signing
    assert "PRIVATE KEY" not in repr(signer) and "es256" in repr(signer)
