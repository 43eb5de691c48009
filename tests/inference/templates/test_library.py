import os

import cv2
import numpy as np
import pytest

from memeswap.inference.errors import DeadlineExceededError, InputError, LimitExceededError, NoFaceError
from memeswap.inference.faces.analyser import CountingAnalyser
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.media.decode import probe_media, read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.limits import Deadline, MediaLimits
from memeswap.inference.media.sampling import SCREENED_FRAMES
from memeswap.inference.templates.compile import TrackCache, analyse_frames
from memeswap.inference.templates.library import TemplateLibrary
from memeswap.inference.templates.manifest import NAME_PATTERN
from memeswap.inference.templates.tracks import SAME_FACE, face_affinity


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
        assert template.manifest.source and "public domain" in (template.manifest.licence or "")


def test_compiled_tracks_are_cached(tmp_path, analyser):
    counting = CountingAnalyser(analyser)
    library = TemplateLibrary(tmp_path / "custom", TrackCache(tmp_path / "cache"), counting)
    first = library.compile(library.get("bounce"))
    assert counting.calls == first.tracks.frame_count
    again = TemplateLibrary(tmp_path / "custom", TrackCache(tmp_path / "cache"), counting).compile(library.get("bounce"))
    assert counting.calls == first.tracks.frame_count  # no analysis the second time
    assert np.array_equal(again.tracks.tracks[0].landmarks, first.tracks.tracks[0].landmarks)


SEVERAL_FACES = {"duo": 2, "versus": 2, "no-yes": 2, "squad": 3, "galaxy-brain": 3}


# The built-ins whose tracking can break: several faces (parallax, split panels, zooms per
# panel), a turning head, shaking and zooming frames. Every built-in is also checked by
# tests/templates/test_builtin_library.py (a face in sampled frames); compiling all 22 here
# took 107 s of a 2-core CI run.
HARD_TO_TRACK = [*SEVERAL_FACES, "side-eye", "shake", "dramatic-zoom", "deal-with-it"]


@pytest.mark.parametrize("name", HARD_TO_TRACK)
def test_builtin_faces_are_tracked_through_every_frame(compiled_builtins, name):
    compiled = compiled_builtins(name)
    assert compiled.face_count == SEVERAL_FACES.get(name, 1)
    for track in compiled.tracks.tracks:
        assert (track.first, track.last) == (0, compiled.tracks.frame_count - 1), track


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


class Refused(Exception):
    pass


@pytest.mark.parametrize("lie", ["title tag", "patched duration"])
def test_add_decodes_once_and_screens_frames_spread_over_what_was_decoded(tmp_path, library, monkeypatch, lie):
    """A clip of 120 frames that says it lasts half a second: the screen still sees frames
    from all over it (frame i is grey level 2i), and the file is decoded once."""
    from memeswap.inference.templates import library as library_module
    from tests.hostile_media import declare_short, mp4_of

    frames = [np.full((64, 96, 3), 2 * i, np.uint8) for i in range(120)]
    source = tmp_path / "clip.mp4"
    if lie == "title tag":
        mp4_of(frames, source, fps=24, title="Duration: 00:00:00.50")
    else:
        source.write_bytes(declare_short(mp4_of(frames, tmp_path / "honest.mp4", fps=24).read_bytes()))
    decodes = []
    real_read_frames = library_module.read_frames

    def counting_read_frames(*args, **kwargs):
        decodes.append(args[0])
        return real_read_frames(*args, **kwargs)

    monkeypatch.setattr(library_module, "read_frames", counting_read_frames)
    seen = []

    def screen(sample):
        seen.extend(round(float(frame.mean()) / 2) for frame in sample)
        raise Refused

    with pytest.raises(Refused):
        library.add(source, "liar", check_frames=screen)
    assert len(decodes) == 1
    assert len(seen) == SCREENED_FRAMES == 16 and seen == sorted(seen)
    share = 120 / 16  # each pick is one frame of its sixteenth of what was decoded, give or take a segment
    assert all(abs(index - (i + 0.5) * share) <= share for i, index in enumerate(seen)), seen
    assert not (tmp_path / "templates").exists() or list((tmp_path / "templates").iterdir()) == []


def test_removing_a_template_removes_its_tracks_unless_another_has_the_same_media(tmp_path, analyser):
    frames, fps = builtin_frames("wobble", TemplateLibrary(tmp_path / "unused", TrackCache(tmp_path / "x"), analyser))
    source = tmp_path / "mine.gif"
    source.write_bytes(encode_frames(frames[:6], "gif", fps).data)
    cache = TrackCache(tmp_path / "tracks")
    library = TemplateLibrary(tmp_path / "templates", cache, analyser)
    library.add(source, "mine")
    library.add(source, "also-mine", scope_key="telegram-chat-5")  # the same media, stored again
    entries = list((tmp_path / "tracks").glob("*.npz"))
    assert len(entries) == 1
    library.remove("mine")
    assert list((tmp_path / "tracks").glob("*.npz")) == entries  # still used by the other one
    assert library.compile(library.get("telegram-chat-5/also-mine")).face_count == 1
    library.remove("telegram-chat-5/also-mine")
    assert list((tmp_path / "tracks").glob("*.npz")) == []


def test_a_media_file_used_once_is_screened_and_leaves_no_tracks(tmp_path, analyser, library):
    frames, fps = builtin_frames("wobble", library)
    source = tmp_path / "once.gif"
    source.write_bytes(encode_frames(frames[:6], "gif", fps).data)
    cache = TrackCache(tmp_path / "tracks")
    screened = []
    compiled = TemplateLibrary(tmp_path / "templates", cache, analyser).ad_hoc(source, check_frames=screened.extend)
    assert compiled.face_count == 1 and compiled.tracks.frame_count == 6 and len(screened) == 6
    assert not (tmp_path / "tracks").exists() or list((tmp_path / "tracks").iterdir()) == []


def cheek_to_cheek(person: np.ndarray, person_face, cat: np.ndarray, with_cat: bool) -> np.ndarray:
    """A 1200x800 frame: the person's face 450 pixels wide, its left edge at x=300, and (when
    `with_cat`) the cat's face pressed against the person's right cheek."""
    scale = 450 / person_face.width
    big = cv2.resize(person, None, fx=scale, fy=scale)
    box = person_face.box * scale
    canvas = np.full((800, 1200, 3), 128, np.uint8)
    ox, oy = 300 - int(box[0]), 400 - int((box[1] + box[3]) / 2)
    ys, xs = max(0, oy), max(0, ox)
    part = big[ys - oy:ys - oy + 800 - ys, xs - ox:xs - ox + 1200 - xs]
    canvas[ys:ys + part.shape[0], xs:xs + part.shape[1]] = part
    if with_cat:
        side = 200 * 240 // 172  # the crop whose face is about 200 pixels wide
        kitty = cv2.resize(cat, (side, side))
        k = side / 240
        x0, y0 = int(300 + 225 + 0.45 * 450 - 133 * k), int(400 - 99 * k)
        canvas[y0:y0 + side, x0:x0 + side] = kitty
    return canvas


def test_a_pet_pressed_against_a_persons_cheek_does_not_inherit_the_persons_verdict(
        analyser, astronaut, astronaut_face, cat_face):
    """The person is alone for three frames, then a cat's face comes in cheek to cheek, so
    close that it is nearer the person's former place than the tracker's threshold. The
    person's own face is the better match for that place: the cat's face must be looked at
    itself (and is no human), not inherit "human" from the person's."""
    alone = cheek_to_cheek(astronaut, astronaut_face, cat_face, with_cat=False)
    together = cheek_to_cheek(astronaut, astronaut_face, cat_face, with_cat=True)
    (person,) = analyser.analyse(alone)
    faces = analyser.analyse(together)
    check = HumanFaceCheck()
    assert len(faces) == 2 and [check.is_human(together, f) for f in faces] == [True, False]  # the premise
    assert face_affinity(person, faces[1]) >= SAME_FACE  # the cat is where the person was, to the tracker
    compiled = analyse_frames([alone] * 3 + [together] * 4, analyser, human_check=check)
    assert len(compiled.tracks) == 1
    assert compiled.tracks[0].first == 0 and compiled.tracks[0].last == 6


def test_two_adds_of_one_name_at_once_end_in_one_template_and_name_taken(tmp_path, library):
    """The second add of a name checks it is free, then decodes and analyses; meanwhile the
    first one stores that name. Its screen (which runs between the two) adds the same name
    for real, so the second add finds the name taken only when it stores its own."""
    frames, fps = builtin_frames("wobble", library)
    source = tmp_path / "clip.gif"
    source.write_bytes(encode_frames(frames[:6], "gif", fps).data)
    other = tmp_path / "other.gif"
    other.write_bytes(encode_frames(frames[6:12], "gif", fps).data)
    raced = []

    def first_add_finishes_meanwhile(sample):
        raced.append(library.add(other, "same", title="The first"))

    with pytest.raises(InputError, match="^a template named 'same' already exists$") as refused:
        library.add(source, "same", title="The second", check_frames=first_add_finishes_meanwhile)
    assert refused.value.code == "name_taken" and len(raced) == 1
    assert library.get("same").manifest.title == "The first"
    assert sorted(p.name for p in (tmp_path / "templates").iterdir()) == ["same"]  # no staging left behind


def test_removing_a_template_stats_each_other_template_once(tmp_path, library, monkeypatch):
    """Deciding whether another template still uses the removed one's tracks looks at each
    added template's stored media only (one stat each), not at every file of every folder."""
    frames, fps = builtin_frames("wobble", library)
    source = tmp_path / "mine.gif"
    source.write_bytes(encode_frames(frames[:6], "gif", fps).data)
    library.add(source, "mine")
    scopes, per_scope = 5, 8
    for s in range(scopes):
        for t in range(per_scope):
            folder = library.scope_folder(f"telegram-chat-{s}") / f"other-{t}"
            folder.mkdir(parents=True)
            for name in ("manifest.json", "template.mp4", "overlay.webp"):
                (folder / name).write_bytes(b"x" * (100 + t))
    stats = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        if str(tmp_path / "templates") in os.fspath(path):
            stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    library.remove("mine")
    monkeypatch.undo()
    assert len(stats) <= scopes * per_scope + scopes + 5, len(stats)  # + each scope's folder, a few more
    assert not (tmp_path / "templates" / "mine").exists()


def test_compile_stops_between_frames_once_the_waiter_gives_up(tmp_path, analyser):
    """A check run for a waiter with a deadline (the bot's protected-face check) stops when
    the waiter gives up, not after analysing the whole template; nothing is cached."""
    counting = CountingAnalyser(analyser)
    library = TemplateLibrary(tmp_path / "templates", TrackCache(tmp_path / "tracks"), counting)
    deadline = Deadline()

    def give_up_after_two(done, total):
        if done == 2:
            deadline.expire()

    with pytest.raises(DeadlineExceededError):
        library.compile(library.get("bounce"), give_up_after_two, deadline=deadline)
    assert counting.calls == 2
    assert not (tmp_path / "tracks").exists() or list((tmp_path / "tracks").iterdir()) == []
