"""TemplateFaces: the people a template shows, described once per media file."""

import numpy as np
import pytest

from memeswap.inference.errors import DeadlineExceededError
from memeswap.inference.media.limits import Deadline
from memeswap.inference.safety.protected_faces import DESCRIPTOR_SIZE
from memeswap.inference.safety.template_faces import TemplateFaces


class GivingUpDescriptor:
    """Stands in for dlib's descriptor; the waiter gives up once the first face is described."""

    def __init__(self, deadline: Deadline | None = None) -> None:
        self.deadline = deadline
        self.calls = 0

    def describe(self, frame: np.ndarray, face) -> np.ndarray:
        self.calls += 1
        if self.deadline is not None:
            self.deadline.expire()
        return np.zeros(DESCRIPTOR_SIZE, np.float32)


def test_describe_stops_between_frames_once_the_waiter_gives_up(compiled_builtins):
    compiled = compiled_builtins("bounce")
    deadline = Deadline()
    descriptor = GivingUpDescriptor(deadline)
    faces = TemplateFaces(descriptor, per_track=4)
    with pytest.raises(DeadlineExceededError):
        faces.describe(compiled, deadline=deadline)
    assert descriptor.calls == 1  # the other three frames wanted were never decoded
    descriptor.deadline = None
    assert faces.describe(compiled).shape == (4 * compiled.face_count, DESCRIPTOR_SIZE)  # nothing half remembered
    assert descriptor.calls == 1 + 4 * compiled.face_count
