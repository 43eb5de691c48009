"""What a chat adapter holds: the store, the job engine and the `bot.core` use cases over
them, built once per process by `bot.assembly.open_services`.

Adapters receive a `BotServices` and never build a model or open a database themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from memeswap.bot.core.faces import SavedFaces, forget_user
from memeswap.bot.core.forgetting import ForgetMarks, ForgetReport
from memeswap.bot.core.gif_search import GifSearch
from memeswap.bot.core.reports import TemplateReports
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.swaps import Swaps
from memeswap.bot.core.template_previews import TemplatePreviews
from memeswap.bot.core.templates import CustomTemplates
from memeswap.bot.settings import Settings
from memeswap.bot.store.database import Database
from memeswap.inference.jobs.blobs import BlobStore
from memeswap.inference.jobs.contract import InferenceEngine, Succeeded
from memeswap.inference.observability.metrics import JobMetrics


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
    previews: TemplatePreviews
    reports: TemplateReports
    gif_search: GifSearch | None = None  # on when the operator set a provider's key

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
        await asyncio.to_thread(self.previews.forget_scope, Scope("user", requester.platform, requester.user_id).key)
        return dataclasses.replace(report, found=report.found or stopped > 0, swaps=stopped)

    @property
    def metrics(self) -> JobMetrics:
        return self.engine.metrics

    async def health(self) -> dict:
        return await self.engine.health()
