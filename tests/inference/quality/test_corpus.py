"""The realism corpus: what its cases render is what their truth says, and an output identical
to a case's template (encoded once more) passes the measures that ask the output to keep the
template (occluders, sharpness, seam, lighting)."""

import numpy as np
import pytest

from memeswap.inference.faces import mesh
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.quality import metrics
from memeswap.inference.quality.contact_sheet import media_frames
from memeswap.inference.quality.corpus import CORPUS_VERSION, FRAMES, Corpus
from memeswap.inference.quality.regions import face_hull_mask, face_width


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, analyser) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("quality"), analyser)


def _template_frames(case) -> list[np.ndarray]:
    return list(read_frames(case.template_path))


def test_the_face_the_detector_finds_is_where_the_truth_puts_it(corpus, analyser):
    for name in ("hand", "turn-40", "background-face"):
        case = corpus.case(name)
        frames = _template_frames(case)
        assert len(frames) == FRAMES == case.truth.faces.shape[1]
        for index in (0, FRAMES - 1):  # nothing in front of the face and no turn at the clip's ends
            truth = case.truth.faces[0, index]
            found = min(analyser.analyse(frames[index]), key=lambda f: np.linalg.norm(f.center - truth[:, :2].mean(0)))
            error = np.linalg.norm(found.kps - truth[list(mesh.KEYPOINTS), :2], axis=1).mean()
            assert error < 0.06 * face_width(truth), (name, index, error)


def test_occluders_cover_the_face_mid_clip(corpus):
    case = corpus.case("hand")
    hidden = [(case.truth.occluders[i] & (hull := face_hull_mask(case.truth.faces[0, i], case.truth.occluders[i].shape))
               ).sum() / hull.sum() for i in range(FRAMES)]
    assert max(hidden) > 0.3 and hidden[0] < max(hidden) / 3
    frame = _template_frames(case)[int(np.argmax(hidden))]
    drawn = frame[case.truth.occluders[int(np.argmax(hidden))]].astype(np.float32)
    assert np.abs(drawn.mean(axis=0) - (214, 160, 128)).max() < 40  # the hand's skin colour, not the face under it


def test_a_head_turn_reaches_its_yaw_mid_clip(corpus, analyser):
    case = corpus.case("turn-40")
    peak = int(np.argmax(np.abs(case.truth.yaw[0])))
    assert abs(case.truth.yaw[0, peak]) == pytest.approx(40, abs=1)
    assert abs(mesh.head_yaw_degrees(case.truth.faces[0, peak])) == pytest.approx(40, abs=4)
    found = analyser.analyse(_template_frames(case)[peak])
    assert found and abs(mesh.head_yaw_degrees(found[0].landmarks)) > 15  # the detector sees a turned head


def test_synthetic_skin_tones_and_the_background_face(corpus, analyser):
    darker = corpus.case("tone-darker")
    frontal = corpus.case("frontal")
    assert (metrics.skin_lightness(darker.selfie, darker.truth.selfie_points)
            < metrics.skin_lightness(frontal.selfie, frontal.truth.selfie_points) - 15)
    assert analyser.analyse(darker.selfie), "the recoloured selfie must still be a face"
    background = corpus.case("background-face")
    frame = _template_frames(background)[0]
    front, behind = (metrics.sharpness(frame, background.truth.faces[f, 0]) for f in (0, 1))
    assert behind < front / 1.5


def test_an_output_identical_to_the_template_passes_what_asks_to_keep_the_template(corpus):
    for name in ("hand", "template-light", "background-face"):
        case = corpus.case(name)
        frames = _template_frames(case)
        again = list(media_frames(encode_frames(frames, "mp4", 12.0)))
        scores = metrics.score_swap(frames, again, case.truth.faces, case.truth.occluders, case.selfie,
                                    case.truth.selfie_points, case.truth.lit_side)
        assert scores["sharpness_pass"] and scores["seam_pass"], (name, scores)
        assert scores["occluder_pass"] is not False and scores["lighting_pass"] is not False, (name, scores)
        assert scores["tone_pass"] is False  # the template's tone is not the selfie's
    assert corpus.case("hand").truth.occluders.any()


def test_a_case_is_built_once_and_older_corpus_versions_go(corpus, analyser):
    stale = corpus.root / "corpus-v0" / "frontal"
    stale.mkdir(parents=True)
    corpus.case("small-selfie")  # built now
    assert not stale.parent.exists()
    case = corpus.case("frontal")
    stamp = (case.folder / "case.json").stat().st_mtime_ns
    again = Corpus(corpus.folder.parent, analyser).case("frontal")
    assert (again.folder / "case.json").stat().st_mtime_ns == stamp
    assert again.folder.parent.name == CORPUS_VERSION
    assert not [p for p in corpus.folder.iterdir() if p.name.startswith(".building-")]
