"""ModelStore: status of files on disk, require() messages, the hash cache, KNOWN_MODELS.

Every model file here is a few hundred KB of deterministic bytes made in tmp_path, with a
spec carrying its real SHA-256.
"""

import dataclasses
import hashlib
import os
import random
from pathlib import Path

import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.models.registry import (
    KNOWN_MODELS,
    ModelSpec,
    ModelStatus,
    ModelStore,
    ModelUnavailableError,
)
from tests.model_specs import make_spec

PAYLOAD_BYTES = 300_000


def fake_model_bytes(seed: int, n: int = PAYLOAD_BYTES) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture()
def swapper_bytes() -> bytes:
    return fake_model_bytes(1)


@pytest.fixture()
def enhancer_bytes() -> bytes:
    return fake_model_bytes(2, 200_000)


@pytest.fixture()
def specs(swapper_bytes, enhancer_bytes) -> dict[str, ModelSpec]:
    return {
        "swapper": make_spec("fake_swapper", swapper_bytes),
        "sizeless": make_spec("fake_sizeless", swapper_bytes, known_size=False, role="detector"),
        "unpinned": make_spec("fake_enhancer", enhancer_bytes, pinned=False, non_commercial=False, role="enhancer"),
        "free": make_spec("fake_free", enhancer_bytes, non_commercial=False, role="landmarks"),
    }


@pytest.fixture()
def store(tmp_path: Path, specs) -> ModelStore:
    return ModelStore(tmp_path / "models", tuple(specs.values()))


@pytest.fixture()
def sha256_calls(monkeypatch) -> list[int]:
    """Counts hashlib.sha256 constructions made after the fixture starts."""
    calls: list[int] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(*args, **kwargs):
        calls.append(1)
        return real_sha256(*args, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting_sha256)
    return calls


def place(store: ModelStore, name: str, data: bytes) -> Path:
    path = store.path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def test_present_file_verifies_and_require_returns_its_path(store, swapper_bytes):
    path = place(store, "fake_swapper", swapper_bytes)
    assert store.status("fake_swapper") is ModelStatus.PRESENT
    assert store.require("fake_swapper") == path
    assert path == store.folder / "fake_swapper.onnx"


def test_spec_accepts_name_or_filename(store, specs):
    assert store.spec("fake_swapper") is specs["swapper"]
    assert store.spec("fake_swapper.onnx") is specs["swapper"]
    assert store.path("fake_swapper.onnx") == store.path("fake_swapper")


def test_unknown_name_lists_the_known_models(store):
    with pytest.raises(InputError) as raised:
        store.spec("inswapper_256")
    message = str(raised.value)
    assert "inswapper_256" in message
    for name in ("fake_swapper", "fake_sizeless", "fake_enhancer", "fake_free"):
        assert name in message
    assert "\n" not in message
    with pytest.raises(InputError):
        store.status("inswapper_256")


def test_missing_file_and_a_missing_folder(store):
    assert not store.folder.exists()
    assert store.status("fake_swapper") is ModelStatus.MISSING
    assert store.status("fake_enhancer") is ModelStatus.MISSING
    assert not store.folder.exists(), "a store only reads its folder"


def test_require_message_for_a_missing_non_commercial_model(store):
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("fake_swapper")
    assert str(raised.value) == (
        f"model fake_swapper is missing from {store.folder}; "
        "fetch it with: memeswap models fetch fake_swapper --accept-license"
    )
    assert isinstance(raised.value, InputError)
    assert raised.value.code == "model_unavailable"


def test_require_message_omits_accept_license_where_not_needed(store):
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("fake_free")
    message = str(raised.value)
    assert message.endswith("fetch it with: memeswap models fetch fake_free")
    assert "--accept-license" not in message


def test_same_size_flipped_byte_is_corrupt(store, swapper_bytes):
    place(store, "fake_swapper", flip_byte(swapper_bytes, 12345))
    assert store.status("fake_swapper") is ModelStatus.CORRUPT
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("fake_swapper")
    message = str(raised.value)
    assert "SHA-256" in message and "\n" not in message
    assert message.endswith("fetch it again with: memeswap models fetch fake_swapper --accept-license")


def test_wrong_size_is_reported_without_hashing(store, swapper_bytes, sha256_calls):
    place(store, "fake_swapper", swapper_bytes + b"extra")
    assert store.status("fake_swapper") is ModelStatus.WRONG_SIZE
    assert sha256_calls == []
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("fake_swapper")
    assert "not the published" in str(raised.value)
    assert "memeswap models fetch fake_swapper --accept-license" in str(raised.value)


def test_truncated_file(store, swapper_bytes):
    place(store, "fake_swapper", swapper_bytes[:100_000])
    place(store, "fake_sizeless", swapper_bytes[:100_000])
    # With a published size the truncation shows as a size mismatch; without, as a bad hash.
    assert store.status("fake_swapper") is ModelStatus.WRONG_SIZE
    assert store.status("fake_sizeless") is ModelStatus.CORRUPT
    with pytest.raises(ModelUnavailableError):
        store.require("fake_sizeless")


def test_empty_file_is_not_present(store, swapper_bytes):
    place(store, "fake_swapper", b"")
    place(store, "fake_sizeless", b"")
    assert store.status("fake_swapper") is ModelStatus.WRONG_SIZE
    assert store.status("fake_sizeless") is ModelStatus.CORRUPT


def test_a_directory_with_the_model_name_is_missing(store):
    store.path("fake_swapper").mkdir(parents=True)
    assert store.status("fake_swapper") is ModelStatus.MISSING


def test_unpinned_model_is_unverified_never_present(store, enhancer_bytes, sha256_calls):
    path = place(store, "fake_enhancer", enhancer_bytes)
    assert store.status("fake_enhancer") is ModelStatus.UNVERIFIED
    assert store.require("fake_enhancer") == path  # usable, but not claimed verified
    assert sha256_calls == [], "there is nothing to compare a hash with"
    row = {r["name"]: r for r in store.rows()}["fake_enhancer"]
    assert row["status"] == "unverified"


def test_hash_is_cached_per_file_version(store, swapper_bytes, sha256_calls):
    path = place(store, "fake_swapper", swapper_bytes)
    assert store.status("fake_swapper") is ModelStatus.PRESENT
    assert store.status("fake_swapper") is ModelStatus.PRESENT
    store.require("fake_swapper")
    assert len(sha256_calls) == 1

    # Same size, new content and a new mtime: hashed again, and found corrupt.
    stat = path.stat()
    path.write_bytes(flip_byte(swapper_bytes, 7))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert store.status("fake_swapper") is ModelStatus.CORRUPT
    assert len(sha256_calls) == 2

    # The cache belongs to the instance: another store hashes for itself.
    other = ModelStore(store.folder, store.models)
    assert other.status("fake_swapper") is ModelStatus.CORRUPT
    assert len(sha256_calls) == 3


def test_status_without_hash_check(store, swapper_bytes, sha256_calls):
    path = place(store, "fake_swapper", flip_byte(swapper_bytes, 0))
    assert store.status("fake_swapper", check_hash=False) is ModelStatus.PRESENT
    assert sha256_calls == []
    # Once a hash has been computed for this very file, the cheap check uses it.
    assert store.status("fake_swapper") is ModelStatus.CORRUPT
    assert store.status("fake_swapper", check_hash=False) is ModelStatus.CORRUPT
    path.write_bytes(b"short")
    assert store.status("fake_swapper", check_hash=False) is ModelStatus.WRONG_SIZE


def test_rows_for_models_list(store, swapper_bytes, enhancer_bytes):
    place(store, "fake_swapper", swapper_bytes)
    place(store, "fake_free", flip_byte(enhancer_bytes, 3))
    rows = store.rows()
    assert [r["name"] for r in rows] == ["fake_swapper", "fake_sizeless", "fake_enhancer", "fake_free"]
    by_name = {r["name"]: r for r in rows}
    assert {k: by_name["fake_swapper"][k] for k in ("filename", "role", "status", "size", "path")} == {
        "filename": "fake_swapper.onnx",
        "role": "swapper",
        "status": "present",
        "size": len(swapper_bytes),
        "path": str(store.folder / "fake_swapper.onnx"),
    }
    assert by_name["fake_swapper"]["licence"] == "non-commercial research only (test)"
    assert by_name["fake_sizeless"]["status"] == "missing"
    assert by_name["fake_sizeless"]["size"] is None
    assert by_name["fake_enhancer"]["status"] == "missing"
    assert by_name["fake_free"]["status"] == "corrupt"
    assert all(isinstance(r["status"], str) for r in rows)


def test_store_rejects_duplicate_names(specs):
    clash = dataclasses.replace(specs["free"], name="fake_swapper")
    with pytest.raises(ValueError):
        ModelStore(Path("/nonexistent"), (specs["swapper"], clash))


@pytest.mark.parametrize(
    "change",
    [
        {"filename": "../escape.onnx"},
        {"filename": "sub/model.onnx"},
        {"sha256": "ABC"},
        {"role": "painter"},
        {"size": 0},
        {"urls": ["https://example.invalid/x.onnx"]},
    ],
)
def test_spec_validation(specs, change):
    with pytest.raises(ValueError):
        dataclasses.replace(specs["swapper"], **change)


def test_known_models_carry_the_published_values():
    assert isinstance(KNOWN_MODELS, tuple)
    by_file = {spec.filename: spec for spec in KNOWN_MODELS}
    assert set(by_file) == {"inswapper_128.onnx", "det_10g.onnx", "w600k_r50.onnx", "2d106det.onnx", "GFPGANv1.4.onnx"}
    assert len({spec.name for spec in KNOWN_MODELS}) == len(KNOWN_MODELS)

    inswapper = by_file["inswapper_128.onnx"]
    assert inswapper.name == "inswapper_128" and inswapper.role == "swapper"
    assert inswapper.sha256 == "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"
    assert inswapper.size == 554253681
    assert inswapper.non_commercial
    assert "https://github.com/facefusion/facefusion-assets/releases/download/models/inswapper_128.onnx" in inswapper.urls
    assert any(url.startswith("https://huggingface.co/") for url in inswapper.urls)

    published = {
        "det_10g.onnx": ("detector", "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91"),
        "w600k_r50.onnx": ("recogniser", "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43"),
        "2d106det.onnx": ("landmarks", "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf"),
    }
    for filename, (role, sha256) in published.items():
        spec = by_file[filename]
        assert (spec.role, spec.sha256, spec.size, spec.non_commercial) == (role, sha256, None, True)
        assert "buffalo_l" in spec.description

    gfpgan = by_file["GFPGANv1.4.onnx"]
    assert (gfpgan.role, gfpgan.sha256, gfpgan.size, gfpgan.non_commercial) == ("enhancer", "", None, False)
    assert gfpgan.licence == "Apache-2.0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        gfpgan.sha256 = "0" * 64  # type: ignore[misc]


def test_default_store_uses_known_models(tmp_path):
    store = ModelStore(tmp_path)
    assert store.models == KNOWN_MODELS
    assert store.status("inswapper_128.onnx") is ModelStatus.MISSING
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("inswapper_128")
    assert str(raised.value) == (
        f"model inswapper_128 is missing from {tmp_path}; "
        "fetch it with: memeswap models fetch inswapper_128 --accept-license"
    )
    with pytest.raises(ModelUnavailableError) as raised:
        store.require("GFPGANv1.4")
    assert "--accept-license" not in str(raised.value)
