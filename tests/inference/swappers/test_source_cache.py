import numpy as np

from memeswap.inference.swappers.source_cache import PreparedSources


def test_a_selfie_is_prepared_once_and_again_when_it_or_its_face_changes():
    sources = PreparedSources(keep=2)
    calls = []

    def prepare(tag):
        def run():
            calls.append(tag)
            return tag
        return run

    image = np.zeros((8, 8, 3), np.uint8)
    points = np.ones((478, 3), np.float32)
    assert sources.get(image, points, prepare("first")) == "first"
    assert sources.get(image.copy(), points.copy(), prepare("again")) == "first"  # same bytes, same face
    changed = image.copy()
    changed[0, 0, 0] = 1
    assert sources.get(changed, points, prepare("changed")) == "changed"
    assert sources.get(image, points + 1, prepare("other face")) == "other face"
    assert sources.get(image, points, prepare("evicted")) == "evicted"  # only the newest two are kept
    assert calls == ["first", "changed", "other face", "evicted"]


def test_the_classic_swapper_prepares_a_selfie_once(swapper, analyser, group):
    from memeswap.inference.samples import crop_face

    image, faces = group
    selfie = crop_face(image, faces[2])
    face = analyser.analyse(selfie)[0]
    assert swapper.prepare_source(selfie, face) is swapper.prepare_source(selfie.copy(), face)
