import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.settings import Settings
from inference.errors import InputError
from inference.faces.analyser import FaceAnalyser
from inference.faces.mediapipe_analyser import MediaPipeAnalyser
from inference.media.limits import MediaLimits
from inference.models.registry import USABLE_STATUSES, ModelStore
from inference.swappers.base import Swapper
from inference.swappers.classic import ClassicSwapper
from inference.templates.compile import TrackCache
from inference.templates.library import TemplateLibrary

if TYPE_CHECKING:
    from inference.enhancers.gfpgan import FaceEnhancer

log = logging.getLogger("memeswap.components")

LEARNED_SWAPPER_MODELS = ("inswapper_128", "w600k_r50")
DETECTOR_PACK_MODELS = ("det_10g", "2d106det", "w600k_r50")


@dataclass
class Components:
    """The engine parts one process builds from its settings, once."""

    analyser: FaceAnalyser
    swapper: Swapper
    library: TemplateLibrary
    limits: MediaLimits
    enhancer: "FaceEnhancer | None" = None


def build_swapper(settings: Settings, store: ModelStore) -> Swapper:
    """The swapper `settings.swapper` asks for; `auto` takes the learned one when its models verify."""
    if settings.swapper == "classic":
        return ClassicSwapper(settings.max_selfie_yaw_degrees, tone_balance=settings.skin_tone_balance)
    if settings.swapper == "auto":
        missing = [n for n in LEARNED_SWAPPER_MODELS if store.status(n) not in USABLE_STATUSES]
        if missing:
            log.info("swapper: classic (the learned swapper needs %s in %s; see `memeswap models list`)",
                     ", ".join(missing), store.folder)
            return ClassicSwapper(settings.max_selfie_yaw_degrees, tone_balance=settings.skin_tone_balance)
    from inference.faces.arcface import ArcFaceEmbedder
    from inference.swappers.inswapper import InSwapper

    swapper_path, recogniser_path = (store.require(n) for n in LEARNED_SWAPPER_MODELS)
    log.info("swapper: inswapper (%s, %s)", swapper_path.name, recogniser_path.name)
    embedder = ArcFaceEmbedder(recogniser_path, providers=settings.onnx_provider)
    return InSwapper(swapper_path, embedder, providers=settings.onnx_provider,
                     batch_size=settings.swap_batch_size, mouth_mask=settings.mouth_mask)


def build_enhancer(settings: Settings, store: ModelStore) -> "FaceEnhancer | None":
    """The optional face-restoration stage, off unless `MEMESWAP_ENHANCER=true`."""
    if not settings.enhancer:
        return None
    from inference.enhancers.gfpgan import FaceEnhancer

    path = store.require("GFPGANv1.4")
    log.info("enhancer: %s, blend %.2f", path.name, settings.enhancer_blend)
    return FaceEnhancer(path, providers=settings.onnx_provider, blend=settings.enhancer_blend)


def build_analyser(settings: Settings, store: ModelStore, swapper: Swapper, quiet: bool = True) -> FaceAnalyser:
    """MediaPipe (478-point mesh, embedded) unless the learned swapper runs and the SCRFD
    pack verifies; the classic swapper needs MediaPipe's dense mesh, so it always gets it."""
    wanted = settings.analyser
    if wanted == "auto":
        pack = all(store.status(n) in USABLE_STATUSES for n in DETECTOR_PACK_MODELS)
        wanted = "insightface" if swapper.name == "inswapper" and pack else "mediapipe"
    if wanted == "insightface":
        if swapper.name == "classic":
            raise InputError("the classic swapper needs the MediaPipe analyser's dense mesh; "
                             "set MEMESWAP_ANALYSER=mediapipe or use the learned swapper")
        from inference.faces.insightface_analyser import InsightFaceAnalyser

        detector, landmarks, recogniser = (store.require(n) for n in DETECTOR_PACK_MODELS)
        log.info("analyser: insightface (%s, %s, %s)", detector.name, landmarks.name, recogniser.name)
        return InsightFaceAnalyser(detector, landmarks, recogniser, providers=settings.onnx_provider)
    return MediaPipeAnalyser(quiet=quiet)


def build_components(settings: Settings, quiet: bool = True) -> Components:
    limits = settings.media_limits()
    store = ModelStore(settings.models_dir)
    swapper = build_swapper(settings, store)
    swapper.prepare()
    analyser = build_analyser(settings, store, swapper, quiet)
    cache = TrackCache(settings.cache_dir, settings.track_cache_bytes)
    library = TemplateLibrary(settings.templates_dir, cache, analyser, limits)
    enhancer = build_enhancer(settings, store)
    if enhancer is not None:
        enhancer.prepare()
    return Components(analyser, swapper, library, limits, enhancer)
