"""`memeswap bench`: speed, load and swap-quality benchmarks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from memeswap.bot.commands.state import CliState, out, progress_bars, state_of
from memeswap.inference.errors import InputError

app = typer.Typer()


@app.command()
def bench(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
          template: Annotated[str, typer.Option("--template", "-t")] = "dramatic-zoom",
          quality: Annotated[bool, typer.Option("--quality", help="Score swaps on the realism corpus.")] = False,
          startup: Annotated[bool, typer.Option("--startup", help="Install size and command start-up times.")]
          = False,
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
          soak: Annotated[Optional[float], typer.Option("--soak", min=0.1, help="Minutes of steady load through the "
                                                        "bot's path with workers on Redis: growth and leftovers.")]
          = None,
          ) -> None:
    """Time a swap job against a bare transcode and per-frame analysis; with --load, the job
    service under N concurrent submitters; with --soak, a long steady load (the largest
    --workers count of workers, --load submitters, default 2 per worker); with --quality,
    swap quality on the realism corpus."""
    if startup:
        from memeswap.bot.startup_benchmark import format_startup_report, run_startup_benchmark

        report = run_startup_benchmark()
        if as_json:
            print(json.dumps(report))
        else:
            out.print(format_startup_report(report), highlight=False)
        return
    state = state_of(ctx)
    if quality:
        if load is not None:
            raise InputError("--quality and --load are separate benchmarks; run one at a time")
        _quality_bench(state, case or [], sheets, as_json)
        return
    maker = state.maker
    if soak is not None:
        from memeswap.bot.soak_benchmark import format_soak_report, run_soak_benchmark

        count = max(workers)
        soaked = run_soak_benchmark(state.settings, maker, soak, count, load or 2 * count, template)
        if as_json:
            print(json.dumps(dataclasses.asdict(soaked)))
        else:
            out.print(format_soak_report(soaked), highlight=False)
        return
    if load is not None:
        from memeswap.bot.load_benchmark import (
            format_load_report,
            results_as_dicts,
            run_load_benchmark,
        )

        unknown = set(engine) - {"in-process", "redis"}
        if unknown:
            raise InputError(f"unknown engine {sorted(unknown)[0]!r}; choose in-process or redis")
        results = run_load_benchmark(state.settings, load, jobs or 3 * load, template, tuple(workers), tuple(engine),
                                     maker=maker)
        if as_json:
            print(json.dumps({"template": template, "results": results_as_dicts(results)}))
        else:
            frames = maker.compile(template).tracks.frame_count
            out.print(format_load_report(results, template, frames), highlight=False)
        return
    from memeswap.inference.benchmark import format_report, run_benchmark

    report = run_benchmark(maker, template)
    if as_json:
        print(json.dumps(report))
    else:
        out.print(format_report(report), highlight=False)


def _quality_bench(state: CliState, cases: list[str], sheets: Optional[Path], as_json: bool) -> None:
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("skimage", "scipy")):
        raise InputError("memeswap bench --quality needs scikit-image and SciPy: pip install 'memeswap[bench]'")
    from memeswap.inference.quality.benchmark import format_quality_report, run_quality_benchmark
    from memeswap.inference.quality.corpus import CASES

    unknown = [name for name in cases if name not in CASES]
    if unknown:
        raise InputError(f"no corpus case named {unknown[0][:40]!r}; choose from {', '.join(CASES)}")
    if sheets is not None:
        try:
            sheets.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"--sheets must be a folder we can write to: {error.strerror}") from None
    with progress_bars() as progress:
        task = progress.add_task("quality", total=len(cases or CASES))
        report = run_quality_benchmark(state.settings.data_dir / "cache" / "quality", state.maker,
                                       cases or tuple(CASES), sheets,
                                       progress=lambda name: progress.update(task, advance=1, description=name))
    if as_json:
        print(json.dumps(report))
    else:
        out.print(format_quality_report(report), highlight=False)


