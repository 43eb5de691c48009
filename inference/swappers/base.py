from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memeswap.inference.faces.face import Face
from memeswap.inference.swappers.config import SwapperConfig


class Swapper(Protocol):
    """Puts one source face onto target faces, frame by frame.

    `prepare_source` runs at the start of each job on the selfie (a swapper may keep what it
    works out for the same selfie's next jobs); `swap` takes a batch of frames with
    the target faces of each frame and returns new frames (inputs are not modified), so a
    swapper that can batch (a learned model on a GPU) runs a whole batch at once.
    """

    name: str
    required_models: tuple[str, ...]  # names in the model store (`memeswap models list`); () for none
    required_packages: tuple[str, ...]  # Python packages beyond the default install (an extra's)

    @classmethod
    def from_models(cls, config: SwapperConfig, models: Mapping[str, Path]) -> Swapper:
        """Built from the settings and the verified paths of `required_models`."""

    def prepare(self) -> None:
        """Load models; called once per worker."""

    def prepare_source(self, image: np.ndarray, face: Face) -> Any:
        """Everything the swapper needs from the selfie, computed once per job."""

    def swap(
        self, frames: Sequence[np.ndarray], targets: Sequence[Sequence[Face]], source: Any
    ) -> list[np.ndarray]:
        ...
