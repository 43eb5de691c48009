"""The composition root: choosing the swapper, the enhancer and the analyser from settings, and the one
`MemeMaker` every kind of process swaps through."""

import logging
from pathlib import Path

import numpy as np
import pytest

from memeswap.bot.assembly import build_swapper
from memeswap.bot.settings import Settings
from memeswap.inference.errors import InputError
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.models.registry import ModelStore
from memeswap.inference.pipeline import SwapOptions, run_swap
from memeswap.inference.samples import crop_face
from memeswap.inference.swappers.classic import ClassicSwapper
from memeswap.inference.swappers.inswapper import InSwapper
from tests.model_specs import spec_for
from tests.onnx_graphs import make_arcface, make_inswapper


def tiny_model_store(folder: Path) -> ModelStore:
    """A models folder holding tiny graphs with the real contracts, registered with their own hashes."""
    make_inswapper(folder / "inswapper_128.onnx", mode="tint")
    make_arcface(folder / "w600k_r50.onnx")
    return ModelStore(folder, (spec_for(folder / "inswapper_128.onnx", "swapper"),
                               spec_for(folder / "w600k_r50.onnx", "recogniser")))


def test_auto_falls_back_to_classic_with_one_log_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="memeswap.assembly")
    swapper = build_swapper(Settings(swapper="auto"), ModelStore(tmp_path))
    assert isinstance(swapper, ClassicSwapper)
    lines = [r.getMessage() for r in caplog.records if r.name == "memeswap.assembly"]
    assert len(lines) == 1 and lines[0].startswith("swapper: classic") and "inswapper_128" in lines[0]


def test_auto_takes_the_learned_swapper_when_its_models_verify(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="memeswap.assembly")
    swapper = build_swapper(Settings(swapper="auto", onnx_provider="cpu"), tiny_model_store(tmp_path))
    assert isinstance(swapper, InSwapper)
    assert [r.getMessage() for r in caplog.records if r.name == "memeswap.assembly"][0].startswith(
        "swapper: inswapper")


def test_a_corrupt_model_is_not_used(tmp_path):
    store = tiny_model_store(tmp_path)
    data = bytearray((tmp_path / "inswapper_128.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "inswapper_128.onnx").write_bytes(bytes(data))
    assert isinstance(build_swapper(Settings(swapper="auto"), store), ClassicSwapper)
    with pytest.raises(InputError, match="does not match its published SHA-256"):
        build_swapper(Settings(swapper="inswapper"), store)


def test_asking_for_the_learned_swapper_without_models_names_the_fetch_command(tmp_path):
    with pytest.raises(InputError, match="memeswap models fetch inswapper_128 --accept-license"):
        build_swapper(Settings(swapper="inswapper"), ModelStore(tmp_path))


def test_the_learned_path_runs_a_whole_job_batched(tmp_path, group, analyser, compiled_builtins, human_check):
    swapper = build_swapper(Settings(swapper="inswapper", onnx_provider="cpu", swap_batch_size=8),
                            tiny_model_store(tmp_path))
    swapper.prepare()
    assert swapper.batched
    image, faces = group
    compiled = compiled_builtins("pan")  # no caption or overlay: only the face may change
    result = run_swap(crop_face(image, faces[2]), compiled, analyser, swapper, SwapOptions(format="mp4"),
                      human_check=human_check)
    assert result.media.frame_count == compiled.tracks.frame_count
    (tmp_path / "out.mp4").write_bytes(result.media.data)
    swapped = next(read_frames(tmp_path / "out.mp4")).astype(int)
    original = next(read_frames(compiled.template.media_path)).astype(int)
    outside = np.ones(original.shape[:2], bool)
    for face in compiled.tracks.faces_at(0):
        x0, y0, x1, y1 = face.box.astype(int)
        assert np.abs(swapped[y0:y1, x0:x1] - original[y0:y1, x0:x1]).mean() > 10  # the tint graph ran
        outside[y0:y1, x0:x1] = False
    (tmp_path / "plain.mp4").write_bytes(encode_frames([original.astype(np.uint8)], "mp4", 12).data)
    reencoded = next(read_frames(tmp_path / "plain.mp4")).astype(int)
    codec_error = np.abs(reencoded[outside] - original[outside]).mean()
    assert np.abs(swapped[outside] - original[outside]).mean() < codec_error + 1  # only faces change


def test_the_enhancer_is_off_by_default_and_needs_its_model(tmp_path):
    from memeswap.bot.assembly import build_enhancer

    assert build_enhancer(Settings(), ModelStore(tmp_path)) is None
    with pytest.raises(InputError, match="memeswap models fetch GFPGANv1.4"):
        build_enhancer(Settings(enhancer=True), ModelStore(tmp_path))


def test_the_enhancer_runs_after_the_swap(tmp_path, group, analyser, swapper, compiled_builtins, human_check):
    from memeswap.bot.assembly import build_enhancer
    from tests.onnx_graphs import make_face_restorer

    make_face_restorer(tmp_path / "GFPGANv1.4.onnx", mode="brighten")
    enhancer = build_enhancer(Settings(enhancer=True, enhancer_blend=1.0, onnx_provider="cpu"), ModelStore(tmp_path))
    enhancer.prepare()
    image, faces = group
    compiled = compiled_builtins("pan")
    selfie = crop_face(image, faces[2])
    plain = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="webp"), human_check=human_check)
    enhanced = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="webp"), enhancer=enhancer,
                        human_check=human_check)
    import io

    from PIL import Image

    first = [np.asarray(Image.open(io.BytesIO(r.media.data)).convert("RGB")).astype(int) for r in (plain, enhanced)]
    x0, y0, x1, y1 = compiled.tracks.faces_at(0)[0].box.astype(int)
    centre = (slice((y0 + y1) // 2 - 10, (y0 + y1) // 2 + 10), slice((x0 + x1) // 2 - 10, (x0 + x1) // 2 + 10))
    assert first[1][centre].mean() > first[0][centre].mean() + 10  # the brightening restorer ran


def tiny_pack_store(folder: Path, astronaut: np.ndarray, analyser) -> ModelStore:
    """The learned swapper's files plus an SCRFD/2d106 pack whose detector 'finds' the astronaut's face."""
    from tests.onnx_graphs import make_landmark_106, make_scrfd, scrfd_det_scale

    face = analyser.analyse(astronaut)[0]
    scale = scrfd_det_scale(astronaut.shape)
    make_scrfd(folder / "det_10g.onnx", [(*(face.box * scale), face.kps * scale)])
    make_landmark_106(folder / "2d106det.onnx")
    swapper_store = tiny_model_store(folder)
    return ModelStore(folder, (*swapper_store.models, spec_for(folder / "det_10g.onnx", "detector"),
                               spec_for(folder / "2d106det.onnx", "landmarks")))


def test_analyser_follows_the_swapper_and_the_pack(tmp_path, astronaut, analyser):
    from memeswap.bot.assembly import build_analyser
    from memeswap.inference.faces.insightface_analyser import InsightFaceAnalyser
    from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser

    store = tiny_pack_store(tmp_path, astronaut, analyser)
    learned = build_swapper(Settings(swapper="inswapper", onnx_provider="cpu"), store)
    classic = build_swapper(Settings(swapper="classic"), store)
    assert isinstance(build_analyser(Settings(onnx_provider="cpu"), store, learned), InsightFaceAnalyser)
    assert isinstance(build_analyser(Settings(), store, classic), MediaPipeAnalyser)
    assert isinstance(build_analyser(Settings(), ModelStore(tmp_path / "empty"), learned), MediaPipeAnalyser)
    with pytest.raises(InputError, match="classic swapper needs the MediaPipe"):
        build_analyser(Settings(analyser="insightface"), store, classic)


def test_scrfd_pack_compiles_templates_and_feeds_the_learned_swapper(tmp_path, astronaut, analyser):
    """SCRFD tracks carry the five keypoints inswapper needs; the selfie embedding comes from the pack."""
    import cv2

    from memeswap.bot.assembly import build_analyser
    from memeswap.inference.templates.compile import TrackCache
    from memeswap.inference.templates.library import TemplateLibrary

    store = tiny_pack_store(tmp_path, astronaut, analyser)
    settings = Settings(onnx_provider="cpu")
    swapper = build_swapper(settings.model_copy(update={"swapper": "inswapper"}), store)
    swapper.prepare()
    pack = build_analyser(settings, store, swapper)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), astronaut[:, :, ::-1])
    library = TemplateLibrary(tmp_path / "templates", TrackCache(tmp_path / "tracks"), pack)
    compiled = library.add(still, "astro-still")
    (track,) = compiled.tracks.tracks
    assert track.kps.shape == (1, 5, 2) and track.landmarks.shape == (1, 106, 3)
    result = run_swap(astronaut, compiled, pack, swapper, SwapOptions(format="webp"), human_check=library.human_check)
    assert result.media.frame_count == 1


class RecordingSwapper:
    """The real swapper, counting the frames of every batch it is handed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def swap(self, frames, targets, source):
        self.batches.append(len(frames))
        return self.inner.swap(frames, targets, source)


def test_the_enhancer_and_the_batch_size_reach_a_job_run_by_the_worker(tmp_path, group, redis_url, redis_prefix):
    """`memeswap worker`'s own assembly (`build_meme_maker`, `build_worker`) on real Redis: the
    job's frames reach the swapper 16 at a time (MEMESWAP_SWAP_BATCH_SIZE, once capped at 8),
    and the enhancer set by MEMESWAP_ENHANCER brightens its faces (it once ran for the CLI only)."""
    import asyncio
    import dataclasses
    import io

    import cv2
    from PIL import Image

    from memeswap.bot.assembly import build_blob_store, build_meme_maker, build_worker
    from memeswap.inference.jobs.contract import Succeeded, SwapJob
    from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
    from memeswap.inference.jobs.redis_protocol import StreamKeys
    from tests.inference.jobs.engine_harness import collect
    from tests.onnx_graphs import make_face_restorer

    (tmp_path / "models").mkdir()
    make_face_restorer(tmp_path / "models" / "GFPGANv1.4.onnx", mode="brighten")
    settings = Settings(redis_url=redis_url, redis_prefix=redis_prefix, data_dir=tmp_path / "data",
                        models_dir=tmp_path / "models", swapper="classic", enhancer=True, enhancer_blend=1.0,
                        onnx_provider="cpu", swap_batch_size=16)
    maker = build_meme_maker(settings)
    recording = RecordingSwapper(maker.swapper)
    maker = dataclasses.replace(maker, swapper=recording)
    blobs = build_blob_store(settings)
    image, faces = group
    selfie = crop_face(image, faces[2])
    selfie_ref = blobs.put(cv2.imencode(".png", selfie[:, :, ::-1])[1].tobytes(), 600)

    async def scenario():
        worker = build_worker(settings, maker, blobs)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        engine = RedisStreamsEngine.from_url(redis_url, "shard-assembly", keys=StreamKeys(redis_prefix))
        async with engine:
            job = SwapJob(job_id="assembly-1", user_key="test:1", selfie_ref=selfie_ref, template="bounce",
                          format="webp")
            await engine.submit(job)
            events = await collect(engine, job.job_id, timeout=240)
        stop.set()
        await running
        return events[-1]

    final = asyncio.run(scenario())
    assert isinstance(final, Succeeded)
    frames = maker.compile("bounce").tracks.frame_count
    assert recording.batches[0] == 16 and sum(recording.batches) == frames
    plain = dataclasses.replace(maker, enhancer=None).make(selfie, maker.compile("bounce"), "webp")
    first = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
             for data in (plain.media.data, blobs.get(final.result_ref))]
    x0, y0, x1, y1 = maker.compile("bounce").tracks.faces_at(0)[0].box.astype(int)
    centre = (slice((y0 + y1) // 2 - 10, (y0 + y1) // 2 + 10), slice((x0 + x1) // 2 - 10, (x0 + x1) // 2 + 10))
    assert first[1][centre].mean() > first[0][centre].mean() + 10  # the brightening restorer ran


class MirrorSwapper:
    """A swapper defined outside the package: it flips each frame (models: the ArcFace file)."""

    name = "mirror"
    required_models = ("w600k_r50",)
    required_packages = ()

    def __init__(self, recogniser) -> None:
        self.recogniser = recogniser

    @classmethod
    def from_models(cls, config, models):
        return cls(models["w600k_r50"])

    def prepare(self) -> None:
        pass

    def prepare_source(self, image, face):
        return None

    def swap(self, frames, targets, source):
        return [frame[:, ::-1].copy() for frame in frames]


def test_a_swapper_is_one_registry_line(tmp_path, monkeypatch):
    from memeswap.inference.swappers import registry

    monkeypatch.setitem(registry.SWAPPERS, "mirror", f"{__name__}:MirrorSwapper")
    store = tiny_model_store(tmp_path)
    swapper = build_swapper(Settings(swapper="mirror"), store)
    assert isinstance(swapper, MirrorSwapper) and swapper.recogniser == tmp_path / "w600k_r50.onnx"
    with pytest.raises(ValueError, match="choose auto or one of inswapper, classic, mirror"):
        Settings(swapper="nosuch")
