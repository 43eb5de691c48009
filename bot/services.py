"""The one place a bot process assembles what its chat adapters hold: the store, the job
engine and the `bot.core` use cases over them, built once from `Settings`.

Adapters receive a `BotServices` and never build a model or open a database themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.components import Components, build_components
from bot.core.faces import SavedFaces, forget_user
from bot.core.forgetting import ForgetMarks, ForgetReport
from bot.core.heavy_work import HeavyWork
from bot.core.protection import ProtectedFaceList
from bot.core.requesters import Requester
from bot.core.swaps import Swaps
from bot.core.templates import CustomTemplates, ScopeCaps
from bot.core.usage import SwapQuota
from bot.job_service import build_blob_store, build_engine
from bot.settings import Settings
from bot.store.database import UNREACHABLE, Database, unreachable
from inference.jobs.blobs import BlobStore, swept
from inference.jobs.contract import InferenceEngine, Succeeded
from inference.jobs.redis_engine import RedisStreamsEngine, UnfollowedFinal
from inference.observability.metrics import JobMetrics
from inference.safety.protected_faces import DlibFaceDescriptor

log = logging.getLogger("memeswap.services")


@dataclass
class BotServices:
    settings: Settings
    database: Database
    blobs: BlobStore
    engine: InferenceEngine
    templates: CustomTemplates
    faces: SavedFaces
    swaps: Swaps
    forget_marks: ForgetMarks

    async def result(self, event: Succeeded) -> bytes:
        """The finished meme's bytes."""
        return await asyncio.to_thread(self.blobs.get, event.result_ref)

    async def discard_result(self, event: Succeeded) -> None:
        """Delete a result once it was posted: it shows someone's face, and the chat has it now."""
        await asyncio.to_thread(self.blobs.delete, event.result_ref)

    async def forget(self, requester: Requester) -> ForgetReport:
        """Stop the person's swaps (their selfies and unseen memes go too), then erase what
        the store keeps about them; work of theirs still being checked stops before it
        writes anything."""
        self.forget_marks.mark(requester.user_key)
        stopped = await self.swaps.forget(requester)
        report = await forget_user(self.database, self.templates, requester)
        return dataclasses.replace(report, found=report.found or stopped > 0, swaps=stopped)

    @property
    def metrics(self) -> JobMetrics:
        return self.engine.metrics

    async def health(self) -> dict:
        return await self.engine.health()


def open_database(settings: Settings) -> Database:
    if settings.database_url is not None:
        return Database(settings.database_url.get_secret_value())
    return Database.for_data_dir(settings.data_dir)


@contextlib.asynccontextmanager
async def open_services(settings: Settings, components: Components | None = None,
                        engine: InferenceEngine | None = None,
                        on_unfollowed_final: UnfollowedFinal | None = None,
                        metrics: JobMetrics | None = None) -> AsyncIterator[BotServices]:
    """Migrate the store, start the engine, remove half-added templates, sweep expired blobs
    (now and every `MEMESWAP_BLOB_SWEEP_INTERVAL_S`); close all on exit.

    `components` (the models) are built here unless given; a test passes the ones it has.
    `on_unfollowed_final` posts results of jobs that a previous run of this shard started
    (Redis only: in-process jobs end with their process). `metrics`: the engine's, when the
    caller serves them before the services are up.
    """
    database = open_database(settings)
    try:
        try:
            await database.migrate()
        except UNREACHABLE as error:
            raise unreachable(error) from None
        if components is None:
            components = await asyncio.to_thread(build_components, settings)
        blobs = build_blob_store(settings)
        engine = engine or build_engine(settings, blobs, metrics or JobMetrics(role="bot"), components)
        if on_unfollowed_final is not None and isinstance(engine, RedisStreamsEngine):
            engine.on_unfollowed_final = on_unfollowed_final
        heavy_work = HeavyWork(settings.heavy_work_threads, settings.heavy_work_deadline_s, settings.heavy_work_queue_s)
        protected = ProtectedFaceList(database, DlibFaceDescriptor(), components.analyser, components.limits,
                                      heavy_work=heavy_work)
        forget_marks = ForgetMarks()
        templates = CustomTemplates(
            database, components.library,
            caps=ScopeCaps(settings.templates_per_scope, settings.template_bytes_per_scope),
            nsfw=settings.nsfw_screen(), protected=protected, heavy_work=heavy_work, forget_marks=forget_marks)
        faces = SavedFaces(database, components.analyser, components.limits, settings.saved_faces_per_user,
                           protected, max_yaw_degrees=settings.max_selfie_yaw_degrees
                           if components.swapper.name == "classic" else None,
                           human_check=components.library.human_check, heavy_work=heavy_work,
                           forget_marks=forget_marks)
        quota = SwapQuota(database, settings.swaps_per_user_per_day)
        swaps = Swaps(engine, blobs, templates, faces, quota, forget_marks=forget_marks)
        removed = await templates.reconcile()
        if removed:
            log.warning("removed %d template folder(s) left by adds that did not finish", removed)
        async with swept(blobs, settings.blob_sweep_interval_s):
            await engine.start()
            try:
                yield BotServices(settings, database, blobs, engine, templates, faces, swaps, forget_marks)
            finally:
                heavy_work.close()
                await engine.close()
    finally:
        await database.close()
