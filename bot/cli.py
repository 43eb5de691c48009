"""The `memeswap` command line."""

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from bot.components import Components, build_components
from bot.core.requesters import GLOBAL, Requester
from bot.settings import Settings
from bot.store.database import DATABASE_FILE
from inference.errors import InputError, OutputTooLargeError
from inference.media.decode import load_image, probe_media
from inference.media.encode import write_atomically
from inference.observability.logs import configure_logging
from inference.pipeline import AI_LABEL, SwapOptions, run_swap
from inference.safety.protected_faces import ProtectedFaces
from inference.templates.library import CompiledTemplate

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="memeswap: your face in every frame of a meme. Swap your own face, or a friend's who "
                       "agreed; every result is labelled as AI-generated.")
protected_app = typer.Typer(no_args_is_help=True, help="Faces that must never be swapped in or out, deployment-wide.")
app.add_typer(protected_app, name="protected")
templates_app = typer.Typer(no_args_is_help=True, help="Add, list, show and remove templates.")
app.add_typer(templates_app, name="templates")
discord_app = typer.Typer(no_args_is_help=True, help="Discord: sync the slash commands.")
app.add_typer(discord_app, name="discord")
models_app = typer.Typer(no_args_is_help=True, help="Model files for the learned swapper: list, fetch, verify.")
app.add_typer(models_app, name="models")

err = Console(stderr=True, soft_wrap=True)  # soft wrap: a message stays one line
out = Console(soft_wrap=True)


class CliState:
    """What the top-level options decide, handed to every command through the typer context."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.settings = Settings()
        self._components: Components | None = None

    @property
    def components(self) -> Components:
        if self._components is None:
            self._components = build_components(self.settings, quiet=not self.verbose)
        return self._components

    @functools.cached_property
    def protected(self) -> ProtectedFaces | None:
        """The deployment's protected faces (`memeswap protected add`). Without a database URL
        and before the first `protected add` there is no store, so nothing is protected."""
        settings = self.settings
        if settings.database_url is None and not (settings.data_dir / DATABASE_FILE).exists():
            return None
        database, protected = _protected_list(self)

        async def load() -> ProtectedFaces:
            try:
                await database.migrate()
                return await protected.for_scope(GLOBAL)
            finally:
                await database.close()

        return _with_database(load)

    def nudity_screen(self) -> Callable[[list], None] | None:
        """What every new or one-off template's frames pass before it is stored (protected
        faces are checked on its face tracks once it is compiled)."""
        nsfw = self.settings.nsfw_screen()
        return nsfw.check_template if nsfw is not None else None


def _state(ctx: typer.Context) -> CliState:
    return ctx.ensure_object(CliState)


@app.callback()
def root(ctx: typer.Context,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs and tracebacks.")] = False
         ) -> None:
    state = CliState(verbose)
    configure_logging(state.settings.log_format, logging.INFO if verbose else logging.WARNING,
                      secrets=state.settings.secret_values())
    ctx.obj = state


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def _resolve_template(state: CliState, name_or_path: str, progress: Progress) -> CompiledTemplate:
    library = state.components.library
    task = progress.add_task("analysing template", total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)

    path = Path(name_or_path)
    if path.suffix or "/" in name_or_path or path.exists():
        if not path.is_file():
            raise InputError(f"no such file: {name_or_path}")
        compiled = library.ad_hoc(path, advance, check_frames=state.nudity_screen())
    else:
        compiled = library.compile(library.get(name_or_path), advance)
    progress.remove_task(task)
    return compiled


class SwapperChoice(str, Enum):
    auto = "auto"
    classic = "classic"
    inswapper = "inswapper"


class FormatChoice(str, Enum):
    gif = "gif"
    mp4 = "mp4"
    webp = "webp"


def _output_format(output: Path, fmt: Optional[FormatChoice]) -> str:
    if fmt:
        return fmt.value
    suffix = output.suffix.lower().lstrip(".")
    return suffix if suffix in ("gif", "mp4", "webp") else "gif"


def _check_output(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"the output folder does not exist: {folder}")
    if output.is_dir():
        raise InputError(f"the output path is a folder, not a file name: {output}")


def _run_job(state: CliState, selfie_image, template: CompiledTemplate, fmt: str, max_bytes: Optional[int],
             faces: str, progress: Progress):
    c = state.components
    options = SwapOptions(format=fmt, max_bytes=max_bytes, faces=faces,
                          label=AI_LABEL if state.settings.label_outputs else None, badge=state.settings.badge())
    task = progress.add_task("swapping", total=template.tracks.frame_count)
    return run_swap(selfie_image, template, c.analyser, c.swapper, options, c.limits,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                    enhancer=c.enhancer, human_check=c.library.human_check)


def _swap_to_file(state: CliState, selfie_image, template: CompiledTemplate, output: Path, fmt: str,
                  max_bytes: Optional[int], faces: str, progress: Progress):
    result = _run_job(state, selfie_image, template, fmt, max_bytes, faces, progress)
    write_atomically(output, result.media.data)
    return result


@app.command()
def swap(
    ctx: typer.Context,
    selfie: Annotated[Path, typer.Argument(help="A photo with your face.")],
    template: Annotated[str, typer.Option("--template", "-t", help="Template name or a media file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    fmt: Annotated[Optional[FormatChoice], typer.Option(
        "--format", help="Output format (default: from the file name, else gif).")] = None,
    max_bytes: Annotated[Optional[int], typer.Option("--max-bytes", min=1, help="Byte budget for the output.")] = None,
    face: Annotated[str, typer.Option("--face", help="Template faces to swap: all, largest or a number.")] = "all",
    swapper: Annotated[Optional[SwapperChoice], typer.Option(
        "--swapper", help="classic, inswapper, or auto (inswapper when its models verify).")] = None,
) -> None:
    """Swap the face in SELFIE into every frame of a template."""
    state = _state(ctx)
    if swapper is not None:
        state.settings = state.settings.model_copy(update={"swapper": swapper.value})
    if face not in ("all", "largest") and not face.isdigit():
        raise InputError("--face must be all, largest or a face number such as 0")
    _check_output(output)
    if not selfie.is_file():
        raise InputError(f"no such file: {selfie}")
    image = load_image(selfie, state.components.limits)
    _refuse_protected_selfie(state, image)
    with _progress() as progress:
        compiled = _resolve_template(state, template, progress)
        _refuse_protected_template(state, compiled)
        result = _swap_to_file(state, image, compiled, output, _output_format(output, fmt), max_bytes, face, progress)
    for notice in result.notices:
        err.print(f"note: {notice}")
    media = result.media
    out.print(f"wrote {output} ({media.format}, {media.width}x{media.height}, {media.frame_count} frames, "
              f"{len(media.data) / 1024:.0f} KiB) in {result.timings['total']:.1f} s")


@app.command()
def inspect(
    ctx: typer.Context,
    selfie: Annotated[Path, typer.Argument(help="A photo with your face.")],
    template: Annotated[str, typer.Argument(help="Template name or a media file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PNG.")] = Path("sheet.png"),
    frames: Annotated[int, typer.Option("--frames", min=1, max=24, help="Columns: frames shown.")] = 6,
    fmt: Annotated[FormatChoice, typer.Option("--format", help="Output format swapped to.")] = FormatChoice.mp4,
    face: Annotated[str, typer.Option("--face", help="Template faces to swap: all, largest or a number.")] = "all",
) -> None:
    """Swap SELFIE into TEMPLATE and write a contact sheet: template frames above the output's,
    the most turned and most hidden faces among them."""
    from inference.quality.contact_sheet import sheet_of_swap, write_sheet

    state = _state(ctx)
    if face not in ("all", "largest") and not face.isdigit():
        raise InputError("--face must be all, largest or a face number such as 0")
    if output.suffix.lower() != ".png":
        raise InputError(f"the contact sheet is a PNG; name it with .png, not {output.name[-40:]!r}")
    _check_output(output)
    if not selfie.is_file():
        raise InputError(f"no such file: {selfie}")
    limits = state.components.limits
    image = load_image(selfie, limits)
    _refuse_protected_selfie(state, image)
    with _progress() as progress:
        compiled = _resolve_template(state, template, progress)
        _refuse_protected_template(state, compiled)
        result = _run_job(state, image, compiled, fmt.value, None, face, progress)
    title = (f"{selfie.name[-60:]} into {Path(template).name[-60:]} ({fmt.value}, {compiled.tracks.frame_count} "
             "frames); top: template, bottom: output")
    sheet, picks = sheet_of_swap(compiled, result.media, frames, title, limits)
    write_sheet(output, sheet, picks)
    out.print(f"wrote {output}: frames {', '.join(str(p.index) for p in picks)} of {compiled.tracks.frame_count}, "
              f"{sheet.shape[1]}x{sheet.shape[0]}", highlight=False)


@app.command()
def demo(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("demo.gif"),
    template: Annotated[str, typer.Option("--template", "-t")] = "deal-with-it",
) -> None:
    """Swap a sample face (shipped inside insightface) into a built-in template."""
    from inference.samples import sample_selfie

    state = _state(ctx)
    _check_output(output)
    selfie, credit = sample_selfie(state.components.analyser)
    with _progress() as progress:
        compiled = _resolve_template(state, template, progress)
        result = _swap_to_file(state, selfie, compiled, output, _output_format(output, None), None, "all", progress)
    media = result.media
    out.print(f"wrote {output}: {credit} swapped into '{template}' "
              f"({media.frame_count} frames, {len(media.data) / 1024:.0f} KiB, {result.timings['total']:.1f} s)")


@templates_app.command("list")
def templates_list(ctx: typer.Context,
                   as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """List built-in and added templates."""
    templates = _state(ctx).components.library.templates()
    if as_json:
        out.print_json(json.dumps([{**t.manifest.model_dump(), "builtin": t.builtin} for t in templates]))
        return
    for t in templates:
        kind = "built-in" if t.builtin else "added"
        out.print(f"{t.name:<16} {t.manifest.title:<24} {kind:<9} {', '.join(t.manifest.tags)}", highlight=False)


@templates_app.command("show")
def templates_show(ctx: typer.Context, name: str) -> None:
    """Show one template's manifest and its faces."""
    state = _state(ctx)
    template = state.components.library.get(name)
    with _progress() as progress:
        compiled = _resolve_template(state, name, progress)
    info = probe_media(template.media_path, state.components.limits)
    details = {**template.manifest.model_dump(), "builtin": template.builtin, "width": info.width,
               "height": info.height, "frames": compiled.tracks.frame_count,
               "faces": [{"track": i, "first_frame": t.first, "last_frame": t.last}
                         for i, t in enumerate(compiled.tracks.tracks)]}
    out.print_json(json.dumps(details))


@templates_app.command("add")
def templates_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A GIF, MP4/WebM, animated WebP or still image.")],
    name: Annotated[str, typer.Option("--name", help="Lowercase letters, digits and dashes.")],
    title: Annotated[Optional[str], typer.Option("--title")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Repeat for several tags.")] = None,
    caption: Annotated[Optional[str], typer.Option("--caption")] = None,
) -> None:
    """Validate, analyse and add a template."""
    state = _state(ctx)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with _progress() as progress:
        task = progress.add_task("analysing template", total=None)
        compiled = state.components.library.add(
            path, name, title=title, tags=tag or [], caption=caption,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            check_frames=state.nudity_screen())
        try:
            _refuse_protected_template(state, compiled)
        except InputError:
            state.components.library.remove(name)
            raise
    out.print(f"added template '{name}': {compiled.tracks.frame_count} frames, {compiled.face_count} face track(s)")


@templates_app.command("remove")
def templates_remove(ctx: typer.Context, name: str) -> None:
    """Remove an added template."""
    _state(ctx).components.library.remove(name)
    out.print(f"removed template '{name}'")


def _model_store(ctx: typer.Context):
    from inference.models.registry import ModelStore

    return ModelStore(_state(ctx).settings.models_dir)


def _protected_list(state: CliState):
    from bot.core.protection import ProtectedFaceList
    from bot.store.database import Database
    from inference.safety.protected_faces import DlibFaceDescriptor

    settings = state.settings
    database = (Database(settings.database_url.get_secret_value()) if settings.database_url
                else Database.for_data_dir(settings.data_dir))
    return database, ProtectedFaceList(database, DlibFaceDescriptor(), state.components.analyser,
                                       state.components.limits)


OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)


def _with_database(work):
    """Run one async piece of work against the store; a store that cannot be reached is
    one clear line (the URL is not repeated: it may hold a password)."""
    import asyncio

    from bot.store.database import UNREACHABLE, unreachable

    try:
        return asyncio.run(work())
    except UNREACHABLE as error:
        raise unreachable(error) from None


def _refuse_protected_selfie(state: CliState, image) -> None:
    protected = state.protected
    if protected is not None and protected.entries:
        protected.check_selfie(image, state.components.analyser.analyse(image))


def _refuse_protected_template(state: CliState, compiled: CompiledTemplate) -> None:
    """A template's faces against the deployment's list, at swap time: the list may have
    grown since the template was added, and built-in templates were never screened."""
    protected = state.protected
    if protected is not None and protected.entries:
        from inference.safety.template_faces import TemplateFaces

        protected.check_template_faces(TemplateFaces(protected.descriptor, state.components.limits).describe(compiled))


@protected_app.command("add")
def protected_add(ctx: typer.Context, photo: Path,
                  label: Annotated[str, typer.Option("--label", help="For operators only; never shown to users.")]
                  ) -> None:
    """Protect the largest face in PHOTO; only its descriptor is kept, not the photo."""

    if not photo.is_file():
        raise InputError(f"no such file: {photo}")
    database, protected = _protected_list(_state(ctx))

    async def add() -> None:
        try:
            await database.migrate()
            await protected.add(OPERATOR, photo.read_bytes(), label)
        finally:
            await database.close()

    _with_database(add)
    out.print(f"protected '{label}': that face can no longer be swapped in or out", highlight=False)


@protected_app.command("remove")
def protected_remove(ctx: typer.Context, label: str) -> None:
    """Stop protecting the faces stored under LABEL."""

    database, protected = _protected_list(_state(ctx))

    async def remove() -> int:
        try:
            await database.migrate()
            return await protected.remove(OPERATOR, label)
        finally:
            await database.close()

    if not _with_database(remove):
        raise InputError(f"no protected face labelled {label!r}")
    out.print(f"'{label}' is no longer protected", highlight=False)


@models_app.command("list")
def models_list(ctx: typer.Context,
                as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Known models: present, missing or corrupt, and their licences."""
    rows = _model_store(ctx).rows()
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        out.print(f"{row['name']:<16} {row['status']:<11} {row['role']:<11} {row['size_text']:>9}  {row['licence']}",
                  highlight=False)


@models_app.command("verify")
def models_verify(ctx: typer.Context) -> None:
    """Check every model file that is present against its published SHA-256."""
    store = _model_store(ctx)
    bad = []
    for row in store.rows():
        if row["status"] not in ("missing",):
            out.print(f"{row['name']:<16} {row['status']}", highlight=False)
        if row["status"] in ("corrupt", "wrong_size"):
            bad.append(row["name"])
    if bad:
        raise InputError(f"{', '.join(bad)} failed verification; fetch again with: memeswap models fetch NAME")


@models_app.command("path")
def models_path(ctx: typer.Context) -> None:
    """Print the models folder (MEMESWAP_MODELS_DIR)."""
    print(_model_store(ctx).folder)


@models_app.command("fetch")
def models_fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A model name from `memeswap models list`.")],
    accept_license: Annotated[bool, typer.Option("--accept-license", help="Accept a non-commercial licence.")] = False,
) -> None:
    """Download one model (resumable), check its SHA-256 and put it in place atomically."""
    from inference.models.fetch import fetch_model

    store = _model_store(ctx)
    with _progress() as progress:
        task = progress.add_task(f"fetching {name}", total=None)
        path = fetch_model(store, name, accept_license=accept_license,
                           progress=lambda done, total: progress.update(task, completed=done, total=total))
    out.print(f"{name}: {store.status(name)} at {path}", highlight=False)


@app.command()
def bench(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
          template: Annotated[str, typer.Option("--template", "-t")] = "dramatic-zoom",
          quality: Annotated[bool, typer.Option("--quality", help="Score swaps on the realism corpus.")] = False,
          case: Annotated[Optional[list[str]], typer.Option("--case", help="With --quality: only these cases.")]
          = None,
          sheets: Annotated[Optional[Path], typer.Option("--sheets", help="With --quality: a contact sheet per case "
                                                                         "in this folder.")] = None,
          load: Annotated[Optional[int], typer.Option("--load", min=1,
                                                      help="Concurrent submitters through the job service.")] = None,
          jobs: Annotated[Optional[int], typer.Option("--jobs", min=1,
                                                      help="Jobs per run with --load (default 3 x N).")] = None,
          engine: Annotated[list[str], typer.Option("--engine", help="With --load: in-process, redis (default both).")]
          = ["in-process", "redis"],
          workers: Annotated[list[int], typer.Option("--workers", min=1, help="With --load: worker counts.")] = [1, 2],
          ) -> None:
    """Time a swap job against a bare transcode and per-frame analysis; with --load, the job
    service under N concurrent submitters; with --quality, swap quality on the realism corpus."""
    state = _state(ctx)
    if quality:
        if load is not None:
            raise InputError("--quality and --load are separate benchmarks; run one at a time")
        _quality_bench(state, case or [], sheets, as_json)
        return
    c = state.components
    if load is not None:
        from bot.load_benchmark import (
            format_load_report,
            results_as_dicts,
            run_load_benchmark,
        )

        unknown = set(engine) - {"in-process", "redis"}
        if unknown:
            raise InputError(f"unknown engine {sorted(unknown)[0]!r}; choose in-process or redis")
        results = run_load_benchmark(state.settings, load, jobs or 3 * load, template, tuple(workers), tuple(engine),
                                     components=c)
        if as_json:
            print(json.dumps({"template": template, "results": results_as_dicts(results)}))
        else:
            frames = c.library.compile(c.library.get(template)).tracks.frame_count
            out.print(format_load_report(results, template, frames), highlight=False)
        return
    from inference.benchmark import format_report, run_benchmark

    report = run_benchmark(c.analyser, c.swapper, c.library, c.limits, template)
    if as_json:
        print(json.dumps(report))
    else:
        out.print(format_report(report), highlight=False)


def _quality_bench(state: CliState, cases: list[str], sheets: Optional[Path], as_json: bool) -> None:
    from inference.quality.benchmark import format_quality_report, run_quality_benchmark
    from inference.quality.corpus import CASES

    unknown = [name for name in cases if name not in CASES]
    if unknown:
        raise InputError(f"no corpus case named {unknown[0][:40]!r}; choose from {', '.join(CASES)}")
    if sheets is not None:
        try:
            sheets.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"--sheets must be a folder we can write to: {error.strerror}") from None
    c = state.components
    with _progress() as progress:
        task = progress.add_task("quality", total=len(cases or CASES))
        report = run_quality_benchmark(state.settings.data_dir / "cache" / "quality", c.analyser, c.swapper,
                                       c.limits, c.library.human_check, cases or tuple(CASES), sheets,
                                       progress=lambda name: progress.update(task, advance=1, description=name))
    if as_json:
        print(json.dumps(report))
    else:
        out.print(format_quality_report(report), highlight=False)


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a swap worker for the Redis job queue (needs MEMESWAP_REDIS_URL)."""
    import asyncio

    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError

    from bot.job_service import build_blob_store, build_worker, run_worker

    state = _state(ctx)
    settings = state.settings
    if settings.redis_url is None:
        raise InputError("memeswap worker needs MEMESWAP_REDIS_URL; without Redis the bot runs jobs itself")
    try:  # before loading any model: a wrong URL should not cost a minute of start-up
        with Redis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=5) as probe:
            probe.ping()
    except RedisError as error:
        raise InputError(f"cannot reach Redis (MEMESWAP_REDIS_URL): {error}") from None
    logging.getLogger().setLevel(logging.DEBUG if state.verbose else logging.INFO)
    try:
        asyncio.run(run_worker(settings, lambda metrics: build_worker(settings, state.components,
                                                                       build_blob_store(settings), metrics)))
    except RedisConnectionError as error:
        raise InputError(f"lost the connection to Redis (MEMESWAP_REDIS_URL): {error}") from None


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run the chat bot: Telegram when MEMESWAP_TELEGRAM_TOKEN is set, Discord when
    MEMESWAP_DISCORD_TOKEN is (both in one process when both are)."""
    import asyncio

    from bot.serve import check_tokens
    from bot.serve import serve as run_adapters

    state = _state(ctx)
    check_tokens(state.settings)
    logging.getLogger().setLevel(logging.DEBUG if state.verbose else logging.INFO)
    asyncio.run(run_adapters(state.settings))


@discord_app.command("sync")
def discord_sync(ctx: typer.Context,
                 guild: Annotated[Optional[int], typer.Option(help="Sync to this server only (shows at once).")] = None
                 ) -> None:
    """Create or update the bot's slash commands with Discord (not done at start: Discord
    caps command creates per day). Global by default; changes take up to an hour to show."""
    import asyncio

    from bot.adapters.discord.client import sync_commands

    names = asyncio.run(sync_commands(_state(ctx).settings, guild))
    where = f"server {guild}" if guild is not None else "all servers"
    out.print(f"synced {len(names)} commands to {where}: {', '.join(sorted(names))}", highlight=False)


def main() -> None:
    verbose = "--verbose" in sys.argv[1:] or "-v" in sys.argv[1:]
    try:
        app()  # usage errors and --help are handled (and exit) inside
    except (InputError, OutputTooLargeError) as error:  # OutputTooLarge: the --max-bytes asked for
        hint = "; `memeswap templates list` shows them" if getattr(error, "code", "") == "unknown_template" else ""
        err.print(f"error: {error}{hint}", highlight=False, markup=False)
        sys.exit(2)
    except ValidationError as error:  # a MEMESWAP_* setting that does not parse
        first = error.errors()[0]
        name = "MEMESWAP_" + str(first["loc"][0]).upper() if first["loc"] else "a setting"
        err.print(f"error: invalid {name}: {first['msg']}", highlight=False, markup=False)
        sys.exit(2)
    except SettingsError as error:  # a list or object setting that is not JSON
        err.print(f"error: {error}", highlight=False, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:  # anything else is our bug: one line, details on --verbose
        if verbose:
            traceback.print_exc()
        err.print(f"internal error: {type(error).__name__}: {error} (run with --verbose for details)",
                  highlight=False, markup=False)
        sys.exit(1)
