from typing import Protocol

import numpy as np

from memeswap.inference.faces.face import Face


class FaceAnalyser(Protocol):
    """Finds faces in an RGB uint8 image.

    `version` names the models and settings; compiled template tracks are cached under it,
    so it must change whenever the analyser's output would. `analyse` may be called from
    several threads at once (job workers, a bot's use cases); an implementation whose
    models cannot run concurrently serialises the calls itself.
    """

    name: str

    @property
    def version(self) -> str: ...

    def prepare(self) -> None:
        """Load the models; called once per worker before the first `analyse`."""

    def analyse(self, image: np.ndarray) -> list[Face]:
        """All faces in the image, largest first."""


class CountingAnalyser:
    """An analyser that counts its `analyse` calls: what a job analyses per request (the
    quality benchmark reports it, and tests hold a job to the selfie alone)."""

    def __init__(self, inner: FaceAnalyser) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.calls = 0

    def prepare(self) -> None:
        self.inner.prepare()

    def analyse(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        return self.inner.analyse(image)
