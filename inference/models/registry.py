"""The model files the learned swapper may use, and a folder that holds them.

memeswap never downloads a model while it runs a job: people fetch the files they want
with `memeswap models fetch NAME` (see `inference.models.fetch`), and a job that needs a
missing or damaged file fails at once with a one-line message that names that command.

A `ModelStore` only reads its folder; it never creates, moves or deletes anything.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from memeswap.inference.errors import InputError
from memeswap.inference.sizes import human_bytes

MODEL_ROLES = ("swapper", "detector", "landmarks", "recogniser", "enhancer")
HASH_BLOCK_BYTES = 1024 * 1024
FETCH_COMMAND = "memeswap models fetch"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ModelUnavailableError(InputError):
    """A model a job needs is missing or damaged; the message names the fetch command."""

    code = "model_unavailable"


class ModelStatus(StrEnum):
    """What is on disk for one model, as `status()` and `memeswap models list` report it."""

    PRESENT = "present"  # the file is there and matches its published checksum
    MISSING = "missing"
    CORRUPT = "corrupt"  # right size (or size unknown), wrong SHA-256
    WRONG_SIZE = "wrong_size"  # differs from the published size; not hashed
    UNVERIFIED = "unverified"  # there, but no published checksum to compare with


USABLE_STATUSES = frozenset({ModelStatus.PRESENT, ModelStatus.UNVERIFIED})


@dataclass(frozen=True)
class ModelSpec:
    """One model file as it is published.

    `sha256` is the lower-case hex digest, or "" when no checksum is published (the file
    is then reported as unverified, never as verified). `size` is None when the published
    size is not known.
    """

    name: str
    filename: str
    role: str
    sha256: str
    size: int | None
    licence: str
    non_commercial: bool
    urls: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        if self.role not in MODEL_ROLES:
            raise ValueError(f"unknown model role {self.role!r}; expected one of {', '.join(MODEL_ROLES)}")
        if self.sha256 and not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"sha256 of {self.name} must be 64 lower-case hex digits or empty")
        # The filename is joined to the models folder: it must not be able to leave it.
        if not self.filename or Path(self.filename).name != self.filename or self.filename in (".", ".."):
            raise ValueError(f"model filename {self.filename!r} must be a plain file name")
        if self.size is not None and self.size <= 0:
            raise ValueError(f"size of {self.name} must be positive or None")
        if not isinstance(self.urls, tuple):
            raise ValueError(f"urls of {self.name} must be a tuple")

    @property
    def pinned(self) -> bool:
        """Whether a published SHA-256 exists to verify the file against."""
        return bool(self.sha256)


_INSIGHTFACE_LICENCE = "non-commercial research only (insightface)"
_BUFFALO_L_ORIGIN = (
    "from insightface's buffalo_l model pack "
    "(https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip); "
    "no single-file download is known, unzip the pack and place the file in the models folder"
)

KNOWN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="inswapper_128",
        filename="inswapper_128.onnx",
        role="swapper",
        sha256="e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af",
        size=554253681,
        licence=_INSIGHTFACE_LICENCE,
        non_commercial=True,
        urls=(
            "https://huggingface.co/ezioruan/inswapper_128.onnx/resolve/main/inswapper_128.onnx",
            "https://github.com/facefusion/facefusion-assets/releases/download/models/inswapper_128.onnx",
        ),
        description="insightface's 128 px face swapper (ONNX), used by the inswapper swapper",
    ),
    ModelSpec(
        name="det_10g",
        filename="det_10g.onnx",
        role="detector",
        sha256="5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
        size=None,
        licence=_INSIGHTFACE_LICENCE,
        non_commercial=True,
        urls=(),
        description="SCRFD-10GF face detector, " + _BUFFALO_L_ORIGIN,
    ),
    ModelSpec(
        name="w600k_r50",
        filename="w600k_r50.onnx",
        role="recogniser",
        sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        size=None,
        licence=_INSIGHTFACE_LICENCE,
        non_commercial=True,
        urls=(),
        description="ArcFace R50 (WebFace600K) identity embedding, " + _BUFFALO_L_ORIGIN,
    ),
    ModelSpec(
        name="2d106det",
        filename="2d106det.onnx",
        role="landmarks",
        sha256="f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf",
        size=None,
        licence=_INSIGHTFACE_LICENCE,
        non_commercial=True,
        urls=(),
        description="106-point 2D face landmarks, " + _BUFFALO_L_ORIGIN,
    ),
    ModelSpec(
        name="GFPGANv1.4",
        filename="GFPGANv1.4.onnx",
        role="enhancer",
        sha256="",  # no official checksum of an ONNX export is published
        size=None,
        licence="Apache-2.0",
        non_commercial=False,
        urls=("https://github.com/facefusion/facefusion-assets/releases/download/models/gfpgan_1.4.onnx",),
        description=(
            "GFPGAN v1.4 face restorer, 512 px ONNX export (facefusion's gfpgan_1.4.onnx); "
            "no published checksum, so it is reported as unverified"
        ),
    ),
)


def fetch_command(spec: ModelSpec) -> str:
    """The command line that fetches `spec`, with --accept-license only where it is needed."""
    command = f"{FETCH_COMMAND} {spec.name}"
    return command + " --accept-license" if spec.non_commercial else command


class ModelStore:
    """The model files in one folder, checked against their published size and SHA-256.

    Hash results are cached per instance, keyed by (path, size, mtime_ns), so checking a
    550 MB file before every job of a process hashes it once; a file that is replaced or
    touched is hashed again.
    """

    def __init__(self, folder: Path, models: tuple[ModelSpec, ...] = KNOWN_MODELS) -> None:
        self.folder = Path(folder)
        self.models = tuple(models)
        self._by_key: dict[str, ModelSpec] = {}
        for spec in self.models:
            for key in (spec.name, spec.filename):
                other = self._by_key.get(key)
                if other is not None and other is not spec:
                    raise ValueError(f"model name or filename {key!r} is used twice")
                self._by_key[key] = spec
        self._digests: dict[tuple[str, int, int], str] = {}

    def spec(self, name: str) -> ModelSpec:
        """The spec for a model name ("inswapper_128") or filename ("inswapper_128.onnx")."""
        spec = self._by_key.get(name)
        if spec is None:
            known = ", ".join(s.name for s in self.models) or "none"
            raise InputError(f"unknown model {name!r}; known models: {known}", code="unknown_model")
        return spec

    def path(self, name: str) -> Path:
        return self.folder / self.spec(name).filename

    def status(self, name: str, check_hash: bool = True) -> ModelStatus:
        """What is on disk for `name`.

        A size mismatch is reported without hashing. With `check_hash=False` a file of the
        right size counts as present unless an earlier hash of the same file said otherwise.
        """
        spec = self.spec(name)
        path = self.folder / spec.filename
        try:
            stat = path.stat()
        except FileNotFoundError:
            return ModelStatus.MISSING
        if not path.is_file():
            return ModelStatus.MISSING
        if spec.size is not None and stat.st_size != spec.size:
            return ModelStatus.WRONG_SIZE
        if not spec.pinned:
            return ModelStatus.UNVERIFIED
        digest: str | None
        if check_hash:
            digest = self.file_sha256(path)
        else:
            digest = self._digests.get(_cache_key(path, stat))
            if digest is None:
                return ModelStatus.PRESENT
        return ModelStatus.PRESENT if digest == spec.sha256 else ModelStatus.CORRUPT

    def require(self, name: str) -> Path:
        """The path of a usable model file, or a one-line ModelUnavailableError saying how to get it."""
        spec = self.spec(name)
        path = self.folder / spec.filename
        status = self.status(spec.name)
        if status in USABLE_STATUSES:
            return path
        command = fetch_command(spec)
        if status is ModelStatus.MISSING:
            message = f"model {spec.name} is missing from {self.folder}; fetch it with: {command}"
        elif status is ModelStatus.WRONG_SIZE:
            actual = human_bytes(path.stat().st_size)
            expected = human_bytes(spec.size or 0)
            message = (
                f"model {spec.name} at {path} is {actual}, not the published {expected}; "
                f"fetch it again with: {command}"
            )
        else:
            message = (
                f"model {spec.name} at {path} does not match its published SHA-256; "
                f"fetch it again with: {command}"
            )
        raise ModelUnavailableError(message)

    def rows(self, check_hash: bool = True) -> list[dict[str, Any]]:
        """One dict per known model for `memeswap models list`.

        `size` is the published size in bytes (None when unknown), `size_text` the same for
        people, `status` the ModelStatus value as a plain string.
        """
        return [
            {
                "name": spec.name,
                "filename": spec.filename,
                "role": spec.role,
                "status": str(self.status(spec.name, check_hash=check_hash)),
                "licence": spec.licence,
                "non_commercial": spec.non_commercial,
                "size": spec.size,
                "size_text": human_bytes(spec.size) if spec.size is not None else "unknown",
                "path": str(self.folder / spec.filename),
            }
            for spec in self.models
        ]

    def file_sha256(self, path: Path) -> str:
        """The SHA-256 of a file, read in 1 MiB blocks; cached by (path, size, mtime_ns)."""
        key = _cache_key(path, path.stat())
        digest = self._digests.get(key)
        if digest is None:
            digest = _hash_file(path)
            self._digests[key] = digest
        return digest

    def record_sha256(self, path: Path, digest: str) -> None:
        """Remember the digest of a file that was just written and checked (by a fetch), so
        the next `status()` need not read it again."""
        self._digests[_cache_key(path, path.stat())] = digest


def _cache_key(path: Path, stat: os.stat_result) -> tuple[str, int, int]:
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()
