"""Output formats are a registry: a format defined outside the package (WebM, VP9) is one
class and one registry line, and the encoder, the budget search and the job contract take it."""

import pytest

from memeswap.inference.jobs.contract import SwapJob
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.formats import registry
from memeswap.inference.media.formats.base import MediaFormat
from tests.inference.media.frames import moving_frames


class WebmFormat(MediaFormat):
    name = "webm"
    mime = "video/webm"
    scale_exponent = 1.1
    even_size = True
    levels = ((32, 1.0), (40, 0.6), (48, 0.4))

    def encode_args(self, encoder, setting, output):
        filters, _ = encoder.geometry(setting)
        args = ["-vf", ",".join(filters)] if filters else []
        return args + ["-an", "-c:v", "libvpx-vp9", "-crf", format(round(setting.level), "d"), "-b:v", "0",
                       "-deadline", "realtime", "-cpu-used", "8", "-f", "webm", ffmpeg.file_url(output)]


@pytest.fixture
def webm_registered(monkeypatch):
    monkeypatch.setitem(registry.FORMATS, "webm", f"{__name__}:WebmFormat")
    registry.media_format.cache_clear()
    yield
    registry.media_format.cache_clear()


def test_a_format_is_one_class_and_one_registry_line(webm_registered):
    frames = moving_frames(24, 160, 120)
    full = encode_frames(frames, "webm", fps=12)
    assert full.mime == "video/webm" and full.data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    assert (full.width, full.height, full.frame_count) == (160, 120, 24)
    budget = len(full.data) * 6 // 10
    fitted = encode_frames(frames, "webm", fps=12, max_bytes=budget)
    assert len(fitted.data) <= budget  # the budget search walks its ladder
    assert SwapJob(job_id="j", user_key="t:1", selfie_ref="s", template="pan", format="webm").format == "webm"


def test_an_unknown_format_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown output format 'avi'; use one of gif, mp4, webp"):
        encode_frames(moving_frames(2, 32, 32), "avi", fps=12)
    with pytest.raises(ValueError, match="unknown output format"):
        SwapJob(job_id="j", user_key="t:1", selfie_ref="s", template="pan", format="avi")
