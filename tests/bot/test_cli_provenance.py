"""`memeswap swap` as a process: outputs carry the digital source type in XMP, and a signed
C2PA manifest when the operator gives a certificate and key; a certificate C2PA refuses is
one line before any work."""

import io
import os
import subprocess
import sys
from pathlib import Path

import c2pa
import cv2
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from memeswap.inference.media.provenance import DIGITAL_SOURCE_TYPE
from memeswap.inference.samples import crop_face
from tests.c2pa_certs import make_signing_files, read_manifest
from tests.inference.media.metadata_readers import exiftool


def run(args: list[str], data_dir: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MEMESWAP_DATA_DIR": str(data_dir), **env}
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, group) -> Path:
    folder = tmp_path_factory.mktemp("provenance")
    image, faces = group
    cv2.imwrite(str(folder / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    return folder


def test_a_configured_certificate_signs_the_output(workspace, tmp_path):
    files = make_signing_files(tmp_path / "keys")
    output = tmp_path / "meme.webp"
    result = run(["swap", "selfie.png", "-t", "bounce", "-o", str(output)], tmp_path / "data", workspace,
                 MEMESWAP_C2PA_CERT=str(files.cert), MEMESWAP_C2PA_KEY=str(files.key))
    assert result.returncode == 0, result.stderr
    state, manifest = read_manifest(output.read_bytes(), "image/webp", files.ca_pem)
    assert state == "Trusted"
    actions = [action for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
               for action in assertion["data"]["actions"]]
    assert [(a["action"], a.get("digitalSourceType")) for a in actions] == [("c2pa.created", DIGITAL_SOURCE_TYPE)]
    assert exiftool(output)["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE


def test_without_a_certificate_there_is_xmp_and_no_manifest_and_nothing_said(workspace, tmp_path):
    output = tmp_path / "meme.gif"
    result = run(["swap", "selfie.png", "-t", "bounce", "-o", str(output)], tmp_path / "data", workspace)
    assert result.returncode == 0, result.stderr
    assert "c2pa" not in (result.stdout + result.stderr).lower()
    tags = exiftool(output)
    assert tags["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert not any("jumbf" in key.lower() or "c2pa" in key.lower() for key in tags), tags
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("image/gif", io.BytesIO(output.read_bytes()))


@pytest.mark.parametrize("case", ["wrong use", "only the certificate", "missing key"])
def test_a_certificate_that_cannot_sign_is_one_line_before_any_work(case, workspace, tmp_path):
    usage = ExtendedKeyUsageOID.SERVER_AUTH if case == "wrong use" else ExtendedKeyUsageOID.EMAIL_PROTECTION
    files = make_signing_files(tmp_path / "keys", usage=usage)
    env = {"MEMESWAP_C2PA_CERT": str(files.cert)}
    if case != "only the certificate":
        env["MEMESWAP_C2PA_KEY"] = str(files.key) if case == "wrong use" else str(tmp_path / "nowhere.pem")
    expected = {"wrong use": "C2PA refuses the certificate in MEMESWAP_C2PA_CERT",
                "only the certificate": "set both MEMESWAP_C2PA_CERT and MEMESWAP_C2PA_KEY, or neither",
                "missing key": "cannot read the C2PA key (MEMESWAP_C2PA_KEY)"}[case]
    output = tmp_path / "meme.gif"
    result = run(["swap", "selfie.png", "-t", "bounce", "-o", str(output)], tmp_path / "data", workspace, **env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not output.exists()
