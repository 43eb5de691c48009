from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from memeswap.inference.faces.face import Face


class Swapper(Protocol):
    """Puts one source face onto target faces, frame by frame.

    `prepare_source` runs at the start of each job on the selfie (a swapper may keep what it
    works out for the same selfie's next jobs); `swap` takes a batch of frames with
    the target faces of each frame and returns new frames (inputs are not modified), so a
    swapper that can batch (a learned model on a GPU) runs a whole batch at once.
    """

    name: str

    def prepare(self) -> None:
        """Load models; called once per worker."""

    def prepare_source(self, image: np.ndarray, face: Face) -> Any:
        """Everything the swapper needs from the selfie, computed once per job."""

    def swap(
        self, frames: Sequence[np.ndarray], targets: Sequence[Sequence[Face]], source: Any
    ) -> list[np.ndarray]:
        ...
