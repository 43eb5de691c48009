"""What every command of the `memeswap` command line shares: the state its top-level
options decide (settings, the models, built on first use), the consoles, and the steps
several commands take (resolving a template, checking an output path, refusing a
protected face)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console

from memeswap.bot.core.requesters import GLOBAL, Requester
from memeswap.inference.errors import InputError
from memeswap.inference.media.formats.registry import FORMATS

if TYPE_CHECKING:
    from rich.progress import Progress

    from memeswap.bot.core.protection import ProtectedFaceList
    from memeswap.bot.settings import Settings
    from memeswap.bot.store.database import Database
    from memeswap.inference.media.encode import OutputFormat
    from memeswap.inference.meme_maker import MemeMaker
    from memeswap.inference.safety.protected_faces import ProtectedFaces
    from memeswap.inference.templates.library import CompiledTemplate

err = Console(stderr=True, soft_wrap=True)  # soft wrap: a message stays one line
out = Console(soft_wrap=True)

OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)


class CliState:
    """What the top-level options decide, handed to every command through the typer context.
    The models load on first use, so commands that need none start fast."""

    def __init__(self, verbose: bool, settings: Settings) -> None:
        self.verbose = verbose
        self.settings = settings
        self._maker: MemeMaker | None = None

    @property
    def maker(self) -> MemeMaker:
        """Everything a swap needs (`bot.assembly.build_meme_maker`), built once."""
        if self._maker is None:
            from memeswap.bot.assembly import build_meme_maker

            self._maker = build_meme_maker(self.settings)
        return self._maker

    @functools.cached_property
    def protected(self) -> ProtectedFaces | None:
        """The deployment's protected faces (`memeswap protected add`). Without a database URL
        and before the first `protected add` there is no store, so nothing is protected."""
        from memeswap.bot.store.database import DATABASE_FILE

        settings = self.settings
        if settings.database_url is None and not (settings.data_dir / DATABASE_FILE).exists():
            return None
        database, protected = protected_list(self)

        async def load() -> ProtectedFaces:
            try:
                await database.migrate()
                return await protected.for_scope(GLOBAL)
            finally:
                await database.close()

        return with_database(load)

    def nudity_screen(self) -> Callable[[list], None] | None:
        """What every new or one-off template's frames pass before it is stored (protected
        faces are checked on its face tracks once it is compiled)."""
        nsfw = self.settings.nsfw_screen()
        return nsfw.check_template if nsfw is not None else None


def state_of(ctx: typer.Context) -> CliState:
    return ctx.ensure_object(CliState)


def progress_bars() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def resolve_template(state: CliState, name_or_path: str, progress: Progress) -> CompiledTemplate:
    """A template name from the library, or a media file swapped into once (screened first)."""
    library = state.maker.library
    task = progress.add_task("analysing template", total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)

    path = Path(name_or_path)
    if path.suffix or "/" in name_or_path or path.exists():
        if not path.is_file():
            raise InputError(f"no such file: {name_or_path}")
        compiled = library.ad_hoc(path, advance, check_frames=state.nudity_screen())
    else:
        compiled = state.maker.compile(name_or_path, advance)
    progress.remove_task(task)
    return compiled


FormatChoice = Enum("FormatChoice", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]


def output_format(output: Path, fmt: Optional[FormatChoice]) -> OutputFormat:
    """--format when given; else the output's extension, which must name a format (no
    extension: GIF). A GIF is never written under a name that says something else."""
    if fmt:
        return str(fmt.value)
    suffix = output.suffix.lower().lstrip(".")
    if not suffix:
        return "gif"
    if suffix not in FORMATS:
        names = ", ".join(f".{name}" for name in FORMATS)
        raise InputError(f"cannot write a {output.suffix[:20]!r} file: name the output {names}, or choose one "
                         "with --format")
    return suffix


def check_output(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"the output folder does not exist: {folder}")
    if output.is_dir():
        raise InputError(f"the output path is a folder, not a file name: {output}")


def check_face_choice(face: str) -> None:
    if face not in ("all", "largest") and not face.isdigit():
        raise InputError("--face must be all, largest or a face number such as 0")


def protected_list(state: CliState) -> tuple[Database, ProtectedFaceList]:
    from memeswap.bot.assembly import open_database
    from memeswap.bot.core.protection import ProtectedFaceList
    from memeswap.inference.safety.protected_faces import DlibFaceDescriptor

    database = open_database(state.settings)
    return database, ProtectedFaceList(database, DlibFaceDescriptor(), state.maker.analyser, state.maker.limits)


def with_database(work: Callable[[], Any]) -> Any:
    """Run one async piece of work against the store; a store that cannot be reached is
    one clear line (the URL is not repeated: it may hold a password)."""
    import asyncio

    from memeswap.bot.store.database import UNREACHABLE, unreachable

    try:
        return asyncio.run(work())
    except UNREACHABLE as error:
        raise unreachable(error) from None


def refuse_protected_selfie(state: CliState, image: Any) -> None:
    protected = state.protected
    if protected is not None and protected.entries:
        protected.check_selfie(image, state.maker.analyser.analyse(image))


def refuse_protected_template(state: CliState, compiled: CompiledTemplate) -> None:
    """A template's faces against the deployment's list, at swap time: the list may have
    grown since the template was added, and built-in templates were never screened."""
    protected = state.protected
    if protected is not None and protected.entries:
        from memeswap.inference.safety.template_faces import TemplateFaces

        protected.check_template_faces(TemplateFaces(protected.descriptor, state.maker.limits).describe(compiled))
