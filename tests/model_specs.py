"""Model specs for files the tests make, registered with their own checksums."""

import hashlib
from pathlib import Path

from memeswap.inference.models.registry import ModelSpec


def spec_for(path: Path, role: str) -> ModelSpec:
    """A verified-looking registry entry for a test graph at `path` (name = file stem)."""
    data = path.read_bytes()
    return ModelSpec(name=path.stem, filename=path.name, role=role, sha256=hashlib.sha256(data).hexdigest(),
                     size=len(data), licence="test graph", non_commercial=False, urls=(),
                     description="tiny graph with the real contract")


def make_spec(
    name: str,
    data: bytes,
    *,
    known_size: bool = True,
    pinned: bool = True,
    non_commercial: bool = True,
    role: str = "swapper",
) -> ModelSpec:
    return ModelSpec(
        name=name,
        filename=f"{name}.onnx",
        role=role,
        sha256=hashlib.sha256(data).hexdigest() if pinned else "",
        size=len(data) if known_size else None,
        licence="non-commercial research only (test)" if non_commercial else "Apache-2.0",
        non_commercial=non_commercial,
        urls=(),
        description="a fake model for tests",
    )
