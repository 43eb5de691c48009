"""What a swapper works out once per selfie, kept for that selfie's next jobs.

A person saves a selfie once and then swaps it into template after template; the selfie's
preparation (the classic swapper cleans its skin of strands, glasses and shine and takes its
own shading out: ~20 ms on a 512 px selfie) need not run again for each of them. The key is
the image's bytes and the face picked in it, hashed, so a changed selfie or another face in
it is prepared afresh; the newest few are kept.
"""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

Prepared = TypeVar("Prepared")


class PreparedSources(Generic[Prepared]):
    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._entries: OrderedDict[bytes, Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image: np.ndarray, points: np.ndarray, prepare: Callable[[], Prepared]) -> Prepared:
        """The prepared source for this image and face, from `prepare()` the first time."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((image.shape, image.dtype.str)).encode())
        digest.update(np.ascontiguousarray(image).data)
        digest.update(np.ascontiguousarray(points, np.float32).data)
        key = digest.digest()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        prepared = prepare()
        with self._lock:
            self._entries[key] = prepared
            while len(self._entries) > self.keep:
                self._entries.popitem(last=False)
        return prepared
