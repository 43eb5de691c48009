"""The composition root: every kind of memeswap process (the command line, `memeswap serve`,
`memeswap worker`) is assembled here from one `Settings`, and nowhere else.

- `build_meme_maker`: the models and the template library, as one `MemeMaker`, which the
  command line, the in-process engine and the worker all swap through.
- `build_blob_store`, `build_engine`, `build_worker`: the job service. `MEMESWAP_REDIS_URL`
  is the one switch: unset, jobs run in a thread pool inside the bot's own process and
  blobs live in the data folder; set, jobs go through Redis Streams to worker processes,
  blobs live in Redis where every host can read them, and a bot shard loads no model.
- `open_services`: the store and the `bot.core` use cases a chat adapter holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from memeswap.bot.core.faces import SavedFaces
from memeswap.bot.core.forgetting import ForgetMarks
from memeswap.bot.core.gif_search import GifSearch
from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.reports import TemplateReports
from memeswap.bot.core.swaps import Swaps
from memeswap.bot.core.template_previews import TemplatePreviews
from memeswap.bot.core.templates import CustomTemplates, ScopeCaps
from memeswap.bot.core.usage import SwapQuota
from memeswap.bot.gif_providers.registry import provider_for
from memeswap.bot.job_backends.registry import chosen_backend
from memeswap.bot.safe_download import SafeDownloader
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.bot.startup_wait import migrate_when_reachable, ping_redis_when_reachable
from memeswap.bot.store.database import Database
from memeswap.inference.errors import InputError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser
from memeswap.inference.jobs.blobs import BlobStore, swept
from memeswap.inference.jobs.contract import InferenceEngine, RunJob
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine, UnfollowedFinal
from memeswap.inference.jobs.redis_worker import StreamWorker
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.models.registry import USABLE_STATUSES, ModelStore
from memeswap.inference.observability.metrics import JobMetrics
from memeswap.inference.pipeline import AI_LABEL
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
from memeswap.inference.swappers.base import Swapper
from memeswap.inference.swappers.registry import SWAPPERS, swapper_class
from memeswap.inference.templates.compile import TrackCache
from memeswap.inference.templates.library import TemplateLibrary

if TYPE_CHECKING:
    from memeswap.inference.enhancers.gfpgan import FaceEnhancer
    from memeswap.inference.media.c2pa_manifest import ManifestSigner

log = logging.getLogger("memeswap.assembly")

DETECTOR_PACK_MODELS = ("det_10g", "2d106det", "w600k_r50")


def build_swapper(settings: Settings, store: ModelStore) -> Swapper:
    """The swapper `settings.swapper` names (`inference.swappers.registry`); `auto` takes the
    first one whose models all verify, and one log line says which and why."""
    name, passed_over = settings.swapper, []
    if name == "auto":
        for candidate in SWAPPERS:
            kind = swapper_class(candidate)
            missing = [f"pip install 'memeswap[learned]' ({package})" for package in kind.required_packages
                       if importlib.util.find_spec(package) is None]
            missing += [m for m in kind.required_models if store.status(m) not in USABLE_STATUSES]
            if not missing:
                name = candidate
                break
            passed_over.append(f"the {candidate} swapper needs {', '.join(missing)}")
    kind = swapper_class(name)
    absent = [package for package in kind.required_packages if importlib.util.find_spec(package) is None]
    if absent:
        raise InputError(f"the {name} swapper needs {', '.join(absent)}: pip install 'memeswap[learned]'",
                         code="settings")
    models = {model: store.require(model) for model in kind.required_models}
    used = f" ({', '.join(path.name for path in models.values())})" if models else ""
    skipped = f" ({'; '.join(passed_over)} in {store.folder}; see `memeswap models list`)" if passed_over else ""
    log.info("swapper: %s%s%s", name, used, skipped)
    return kind.from_models(settings.swapper_config(), models)


def build_enhancer(settings: Settings, store: ModelStore) -> FaceEnhancer | None:
    """The optional face-restoration stage, off unless `MEMESWAP_ENHANCER=true`."""
    if not settings.enhancer:
        return None
    from memeswap.inference.enhancers.gfpgan import FaceEnhancer

    path = store.require("GFPGANv1.4")
    log.info("enhancer: %s, blend %.2f", path.name, settings.enhancer_blend)
    return FaceEnhancer(path, providers=settings.onnx_provider, blend=settings.enhancer_blend)


def build_analyser(settings: Settings, store: ModelStore, swapper: Swapper) -> FaceAnalyser:
    """MediaPipe (478-point mesh, embedded) unless the learned swapper runs and the SCRFD
    pack verifies; the classic swapper needs MediaPipe's dense mesh, so it always gets it."""
    wanted = settings.analyser
    installed = importlib.util.find_spec("insightface") is not None
    if wanted == "auto":
        pack = all(store.status(n) in USABLE_STATUSES for n in DETECTOR_PACK_MODELS)
        wanted = "insightface" if swapper.name == "inswapper" and pack and installed else "mediapipe"
    if wanted == "insightface" and not installed:
        raise InputError("MEMESWAP_ANALYSER=insightface needs the insightface package: "
                         "pip install 'memeswap[learned]'", code="settings")
    if wanted == "insightface":
        if swapper.name == "classic":
            raise InputError("the classic swapper needs the MediaPipe analyser's dense mesh; "
                             "set MEMESWAP_ANALYSER=mediapipe or use the learned swapper")
        from memeswap.inference.faces.insightface_analyser import InsightFaceAnalyser

        detector, landmarks, recogniser = (store.require(n) for n in DETECTOR_PACK_MODELS)
        log.info("analyser: insightface (%s, %s, %s)", detector.name, landmarks.name, recogniser.name)
        return InsightFaceAnalyser(detector, landmarks, recogniser, providers=settings.onnx_provider)
    return MediaPipeAnalyser()


def build_manifest_signer(settings: Settings) -> ManifestSigner | None:
    """The C2PA signer when the operator gave a certificate and a key; checked here, at
    start, so a bad one is one line then and not a failure in every job."""
    if settings.c2pa_cert is None and settings.c2pa_key is None:
        return None
    if settings.c2pa_cert is None or settings.c2pa_key is None:
        raise InputError("set both MEMESWAP_C2PA_CERT and MEMESWAP_C2PA_KEY, or neither", code="settings")
    from memeswap.inference.media.c2pa_manifest import ManifestSigner

    signer = ManifestSigner.from_files(settings.c2pa_cert, settings.c2pa_key)
    log.info("outputs carry a C2PA manifest signed with %s", settings.c2pa_cert.name)
    return signer


def build_meme_maker(settings: Settings, swaps: bool = True) -> MemeMaker:
    """The models and the library this process swaps with, loaded once.

    `swaps=False`: a bot shard on Redis, which looks at faces (saved selfies, added
    templates) but leaves the swapping to workers, so its swapper's and enhancer's models
    are never loaded."""
    signer = build_manifest_signer(settings)  # first: a bad certificate is refused before any model loads
    limits = settings.media_limits()
    store = ModelStore(settings.models_dir)
    swapper = build_swapper(settings, store)
    if swaps:
        swapper.prepare()
    analyser = build_analyser(settings, store, swapper)
    cache = TrackCache(settings.cache_dir, settings.track_cache_bytes)
    library = TemplateLibrary(settings.templates_dir, cache, analyser, limits)
    enhancer = build_enhancer(settings, store) if swaps else None
    if enhancer is not None:
        enhancer.prepare()
    return MemeMaker(analyser, swapper, library, limits, enhancer, label=AI_LABEL if settings.label_outputs else None,
                     signer=signer, badge=settings.badge(),
                     batch_size=settings.swap_batch_size)


def build_blob_store(settings: Settings) -> BlobStore:
    return chosen_backend(settings).blob_store(settings)


def build_engine(settings: Settings, blobs: BlobStore, metrics: JobMetrics | None = None,
                 maker: MemeMaker | None = None, **overrides: object) -> InferenceEngine:
    """The engine a bot shard submits to, on the configured job backend. Where the bot runs
    the jobs itself it needs the models (`maker`, built here when not given)."""
    backend = chosen_backend(settings)
    if backend.runs_in_the_bot:
        maker = maker or build_meme_maker(settings)
    options = {"max_queue": settings.job_queue_max, "per_user_concurrency": settings.per_user_jobs,
               "per_user_rate": (settings.per_user_jobs_per_minute, settings.per_user_burst),
               "default_deadline_s": settings.job_deadline_s, **overrides}
    return backend.engine(settings, blobs, metrics, maker, **options)


def build_worker(settings: Settings, maker: MemeMaker, blobs: BlobStore,
                 metrics: JobMetrics | None = None) -> StreamWorker:
    """`memeswap worker`'s job loop, where the configured backend runs jobs in workers."""
    return chosen_backend(settings).worker(settings, maker, blobs, metrics or JobMetrics(role="worker"))


def run_job_in_this_process(settings: Settings) -> RunJob:
    """How a worker's child process runs a job it isolates (`ChildProcessRunner`): with the
    models and the blob store loaded from `settings` in the child itself."""
    return build_meme_maker(settings).job_runner(build_blob_store(settings))


def build_gif_search(settings: Settings, swaps: Swaps) -> GifSearch | None:
    """GIF search over the provider whose key is set, fetching only from the providers' media
    hosts (`MEMESWAP_GIF_SEARCH_HOSTS`); None when no key is set."""
    provider = provider_for(settings)
    if provider is None:
        return None
    downloader = SafeDownloader(settings.gif_search_hosts, settings.download_timeout_s, settings.download_total_s,
                                settings.download_loopback_origins)
    log.info("gif search: %s", provider.name)
    return GifSearch(provider, downloader, swaps, settings.max_template_bytes, settings.gif_search_results,
                     settings.gif_search_timeout_s)


def open_database(settings: Settings) -> Database:
    if settings.database_url is not None:
        return Database(settings.database_url.get_secret_value())
    return Database.for_data_dir(settings.data_dir)


@contextlib.asynccontextmanager
async def open_services(settings: Settings, maker: MemeMaker | None = None,
                        engine: InferenceEngine | None = None,
                        on_unfollowed_final: UnfollowedFinal | None = None,
                        metrics: JobMetrics | None = None,
                        stop: asyncio.Event | None = None) -> AsyncIterator[BotServices]:
    """Migrate the store, start the engine, remove half-added templates, sweep expired blobs
    (now and every `MEMESWAP_BLOB_SWEEP_INTERVAL_S`); close all on exit.

    `maker` (the models) is built here unless given; a test passes the one it has.
    `on_unfollowed_final` posts results of jobs that a previous run of this shard started
    (Redis only: in-process jobs end with their process). `metrics`: the engine's, when the
    caller serves them before the services are up.

    A database (and a Redis, where MEMESWAP_REDIS_URL is set) not up yet is waited for, up to
    `MEMESWAP_STARTUP_WAIT_S`; `stop` set meanwhile raises `StoppedWhileWaiting`.
    """
    database = open_database(settings)
    try:
        await migrate_when_reachable(database, settings.startup_wait_s, stop)
        if settings.redis_url is not None:  # before the models load: the wait is over first
            await ping_redis_when_reachable(settings.redis_url.get_secret_value(), settings.startup_wait_s, stop)
        if maker is None:
            maker = await asyncio.to_thread(build_meme_maker, settings, chosen_backend(settings).runs_in_the_bot)
        blobs = build_blob_store(settings)
        engine = engine or build_engine(settings, blobs, metrics or JobMetrics(role="bot"), maker)
        if on_unfollowed_final is not None and isinstance(engine, RedisStreamsEngine):
            engine.on_unfollowed_final = on_unfollowed_final
        heavy_work = HeavyWork(settings.heavy_work_threads, settings.heavy_work_deadline_s, settings.heavy_work_queue_s)
        protected = ProtectedFaceList(database, DlibFaceDescriptor(), maker.analyser, maker.limits,
                                      heavy_work=heavy_work)
        forget_marks = ForgetMarks()
        reports = TemplateReports(database, settings.reports_to_hide)
        templates = CustomTemplates(
            database, maker.library,
            caps=ScopeCaps(settings.templates_per_scope, settings.template_bytes_per_scope),
            nsfw=settings.nsfw_screen(), protected=protected, heavy_work=heavy_work, forget_marks=forget_marks,
            reports=reports)
        faces = SavedFaces(database, maker.analyser, maker.limits, settings.saved_faces_per_user,
                           protected, max_yaw_degrees=settings.max_selfie_yaw_degrees
                           if maker.swapper.name == "classic" else None,
                           human_check=maker.library.human_check, heavy_work=heavy_work,
                           forget_marks=forget_marks)
        previews = TemplatePreviews(maker.library, settings.previews_dir, settings.preview_templates_per_sheet,
                                    settings.preview_cached_sheets, heavy_work)
        quota = SwapQuota(database, settings.swaps_per_user_per_day)
        swaps = Swaps(engine, blobs, templates, faces, quota, forget_marks=forget_marks, reports=reports)
        gif_search = build_gif_search(settings, swaps)
        removed = await templates.reconcile()
        if removed:
            log.warning("removed %d template folder(s) left by adds that did not finish", removed)
        async with swept(blobs, settings.blob_sweep_interval_s):
            await engine.start()
            try:
                yield BotServices(settings, database, blobs, engine, templates, faces, swaps, forget_marks,
                                  previews, reports, gif_search=gif_search)
            finally:
                heavy_work.close()
                if gif_search is not None:
                    await gif_search.close()
                await engine.close()
    finally:
        await database.close()
