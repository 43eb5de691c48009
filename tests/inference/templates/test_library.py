import numpy as np
import pytest

from inference.errors import InputError, LimitExceededError, NoFaceError
from inference.media.decode import probe_media, read_frames
from inference.media.encode import encode_frames
from inference.media.limits import MediaLimits
from inference.templates.compile import TrackCache
from inference.templates.library import TemplateLibrary
from inference.templates.manifest import NAME_PATTERN
from tests.conftest import CountingAnalyser


def builtin_frames(name: str, library: TemplateLibrary) -> tuple[list[np.ndarray], float]:
    template = library.get(name)
    return list(read_frames(template.media_path)), template.manifest.fps


def test_builtin_library_has_short_small_templates(library):
    builtins = [t for t in library.templates() if t.builtin]
    assert len(builtins) >= 8
    for template in builtins:
        assert NAME_PATTERN.fullmatch(template.name)
        info = probe_media(template.media_path)
        assert max(info.width, info.height) <= 512
        assert info.frame_count / template.manifest.fps <= 3.0 + 1e-6
        assert "public domain" in template.manifest.source


def test_compiled_tracks_are_cached(tmp_path, analyser):
    counting = CountingAnalyser(analyser)
    library = TemplateLibrary(tmp_path / "custom", TrackCache(tmp_path / "cache"), counting)
    first = library.compile(library.get("bounce"))
    assert counting.calls == first.tracks.frame_count
    again = TemplateLibrary(tmp_path / "custom", TrackCache(tmp_path / "cache"), counting).compile(library.get("bounce"))
    assert counting.calls == first.tracks.frame_count  # no analysis the second time
    assert np.array_equal(again.tracks.tracks[0].landmarks, first.tracks.tracks[0].landmarks)


def test_builtin_faces_are_tracked_through_every_frame(compiled_builtins, library):
    for template in library.templates():
        compiled = compiled_builtins(template.name)
        expected_faces = 2 if template.name == "duo" else 1
        assert compiled.face_count == expected_faces, template.name
        for track in compiled.tracks.tracks:
            assert (track.first, track.last) == (0, compiled.tracks.frame_count - 1), template.name


def test_add_list_show_remove(tmp_path, library):
    frames, fps = builtin_frames("wobble", library)
    source = tmp_path / "mine.gif"
    source.write_bytes(encode_frames(frames, "gif", fps).data)
    compiled = library.add(source, "my-wobble", tags=["mine"], caption="hello")
    assert compiled.face_count == 1
    listed = {t.name: t for t in library.templates()}
    assert not listed["my-wobble"].builtin and listed["my-wobble"].manifest.tags == ["mine"]
    assert library.get("my-wobble").manifest.caption == "hello"
    library.remove("my-wobble")
    assert "my-wobble" not in {t.name for t in library.templates()}
    assert list((tmp_path / "templates").iterdir()) == []


def test_add_downscales_large_media(tmp_path, library, astronaut):
    import cv2

    big = cv2.resize(astronaut, (1536, 1536))
    source = tmp_path / "big.png"
    cv2.imwrite(str(source), big[:, :, ::-1])
    compiled = library.add(source, "big-still")
    info = probe_media(library.get("big-still").media_path)
    assert max(info.width, info.height) <= 1024
    assert compiled.tracks.frame_count == 1


def test_add_without_a_face_leaves_nothing_behind(tmp_path, library):
    gradient = [np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))] * 6
    source = tmp_path / "noface.gif"
    source.write_bytes(encode_frames(gradient, "gif", 10).data)
    with pytest.raises(NoFaceError, match="no human face found"):
        library.add(source, "noface")
    assert not (tmp_path / "templates").exists() or list((tmp_path / "templates").iterdir()) == []


def test_a_crash_mid_add_leaves_nothing_behind(tmp_path, analyser, library):
    class FailingAnalyser(CountingAnalyser):
        def analyse(self, image):
            if self.calls == 5:
                raise RuntimeError("worker died")
            return super().analyse(image)

    frames, fps = builtin_frames("pan", library)
    source = tmp_path / "pan.gif"
    source.write_bytes(encode_frames(frames, "gif", fps).data)
    failing = TemplateLibrary(tmp_path / "templates", library.cache, FailingAnalyser(analyser))
    with pytest.raises(RuntimeError):
        failing.add(source, "half")
    assert list((tmp_path / "templates").iterdir()) == []
    assert "half" not in {t.name for t in library.templates()}


@pytest.mark.parametrize("name", ["../x", "a/b", "", "UPPER", "x" * 40, "-lead", "dot.name"])
def test_bad_names_are_refused(tmp_path, library, name):
    with pytest.raises(InputError, match="invalid template name"):
        library.add(tmp_path / "whatever.gif", name)


def test_names_are_unique_and_builtins_stay(tmp_path, library):
    with pytest.raises(InputError, match="already exists"):
        library.add(tmp_path / "x.gif", "dramatic-zoom")
    with pytest.raises(InputError, match="built-in"):
        library.remove("dramatic-zoom")
    with pytest.raises(InputError, match="no template named"):
        library.remove("nope")


def test_too_long_a_template_is_refused(tmp_path, library):
    frames, fps = builtin_frames("bounce", library)
    source = tmp_path / "long.gif"
    source.write_bytes(encode_frames(frames * 10, "gif", fps).data)
    with pytest.raises(LimitExceededError, match="too long"):
        TemplateLibrary(tmp_path / "templates", library.cache, library.analyser,
                        MediaLimits(max_frames=100)).add(source, "long")
    assert not (tmp_path / "templates").exists() or list((tmp_path / "templates").iterdir()) == []
