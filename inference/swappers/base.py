from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memeswap.inference.faces.face import Face


@dataclass(frozen=True)
class SwapperConfig:
    """What the settings say about swapping, for whichever swapper is built."""

    max_selfie_yaw_degrees: float = 30.0  # a selfie turned further is refused (the classic swapper)
    tone_balance: float = 0.8  # 1 keeps the selfie's skin tone, 0 takes the template's
    onnx_provider: str = "auto"
    batch_size: int = 16  # most faces per model call (learned swappers)
    mouth_mask: bool = False


class Swapper(Protocol):
    """Puts one source face onto target faces, frame by frame.

    `prepare_source` runs at the start of each job on the selfie (a swapper may keep what it
    works out for the same selfie's next jobs); `swap` takes a batch of frames with
    the target faces of each frame and returns new frames (inputs are not modified), so a
    swapper that can batch (a learned model on a GPU) runs a whole batch at once.
    """

    name: str
    required_models: tuple[str, ...]  # names in the model store (`memeswap models list`); () for none

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
