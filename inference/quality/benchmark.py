"""`memeswap bench --quality`: every corpus case through a real swap job, scored.

Each case's selfie goes through `MemeMaker.make` into its template as a worker would run it (MP4
out, no badge: the badge sits in a corner an occluder may run through), the output is
decoded and scored against the template frames and the case's truth (`metrics.score_swap`),
and GIF jobs are timed against bare GIF transcodes of the same template, as `memeswap bench`
times them (MP4 encodes so fast that its ratio says more about x264 than about the swap).
The face analyser is counted: a job must call it once (the selfie), however hard the template.
"""

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from memeswap.inference.benchmark import bare_transcode
from memeswap.inference.errors import InputError
from memeswap.inference.faces.analyser import CountingAnalyser
from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import OutputFormat
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.quality.contact_sheet import (
    media_frames,
    picks_from_truth,
    render_sheet,
    write_sheet,
)
from memeswap.inference.quality.corpus import CASES, Corpus, CorpusCase
from memeswap.inference.quality.metrics import (
    IDENTITY_GOAL,
    LIGHTING_GOAL,
    OCCLUDER_GOAL,
    SEAM_GOAL,
    SHARPNESS_RANGE,
    TONE_GOAL,
    Describe,
    dlib_describer,
    score_swap,
)
from memeswap.inference.templates.compile import TrackCache
from memeswap.inference.templates.library import TemplateLibrary

COST_GOAL = 2.0  # the whole job against a bare transcode of its template
SHEET_COLUMNS = 6


def run_case(case: CorpusCase, maker: MemeMaker, describe: Describe | None, sheet: Path | None = None,
             rounds: int = 3) -> dict:
    """One case: a job with MP4 out, scored; then the cost, as `memeswap bench` measures it: the
    median of `rounds` GIF jobs against as many bare GIF transcodes, interleaved. A refused
    selfie is reported as such."""
    compiled = maker.library.compile(case.template)
    limits = maker.limits
    counting = CountingAnalyser(maker.analyser)
    maker = replace(maker, analyser=counting, label=None, badge=None)
    report: dict = {"case": case.name, "about": case.spec.about, "template_faces": compiled.face_count}

    def job(fmt: OutputFormat):
        counting.calls = 0
        return maker.make(case.selfie, compiled, fmt)

    try:
        result = job("mp4")
    except InputError as refusal:
        return {**report, "refused": str(refusal)}
    calls = [counting.calls]
    jobs, transcodes = [], []
    for _ in range(rounds):
        jobs.append(job("gif").timings["total"])
        calls.append(counting.calls)
        transcodes.append(bare_transcode(compiled, limits, "gif"))
    template_frames = list(read_frames(case.template_path, limits, max_side=limits.max_template_side))
    output_frames = list(media_frames(result.media, limits))
    truth = case.truth
    scores = score_swap(template_frames, output_frames, truth.faces, truth.occluders, case.selfie,
                        truth.selfie_points, truth.lit_side, describe, truth.yaw)
    if sheet is not None:
        picks = picks_from_truth(truth.faces, truth.yaw, truth.occluders, SHEET_COLUMNS)
        frames = {p.index: template_frames[p.index] for p in picks}
        swapped = {p.index: output_frames[p.index] for p in picks if p.index < len(output_frames)}
        write_sheet(sheet, render_sheet(f"{case.name}: {case.spec.about} (top: template, bottom: output)",
                                        picks, frames, swapped), picks)
    cost = statistics.median(jobs) / statistics.median(transcodes)
    return {**report, **scores, "job_s": statistics.median(jobs), "transcode_s": statistics.median(transcodes),
            "cost": cost, "cost_pass": cost <= COST_GOAL, "analyser_calls": max(calls)}


def run_quality_benchmark(cache_folder: Path, maker: MemeMaker, cases: Sequence[str] = tuple(CASES),
                          sheets: Path | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Every case in `cases`, then the overall figures. The corpus and its compiled tracks live
    in `cache_folder` (never in the template library's track cache); `sheets`: a folder for one
    contact sheet per case. The corpus is drawn on MediaPipe's 478-point mesh, whichever
    analyser the swaps use."""
    started = time.perf_counter()
    analyser, swapper, limits = maker.analyser, maker.swapper, maker.limits
    mesh_analyser = analyser if analyser.name == MediaPipeAnalyser.name else MediaPipeAnalyser()
    mesh_analyser.prepare()
    corpus = Corpus(cache_folder, mesh_analyser)
    library = TemplateLibrary(corpus.folder / "templates", TrackCache(corpus.folder / "tracks"), analyser, limits,
                              human_check=maker.library.human_check)
    maker = replace(maker, library=library)
    describe = dlib_describer()
    results = []
    for name in cases:
        if progress:
            progress(name)
        sheet = sheets / f"{name}.png" if sheets is not None else None
        results.append(run_case(corpus.case(name), maker, describe, sheet))
    return {"corpus": corpus.folder.name, "swapper": swapper.name, "cases": results,
            "overall": overall(results), "seconds": round(time.perf_counter() - started, 1)}


def _passed(results: list[dict], key: str) -> dict:
    verdicts = [r[key] for r in results if r.get(key) is not None]
    return {"passed": sum(bool(v) for v in verdicts), "measured": len(verdicts)}


def overall(results: list[dict]) -> dict:
    """The figures over all cases: each goal's passes out of the cases it applies to, and the extremes."""
    swapped = [r for r in results if "refused" not in r]
    occluders = [r["occluder_kept"] for r in swapped if r.get("occluder_kept") is not None]
    identities = [r["identity"] for r in swapped if r.get("identity") is not None]
    ratios = [v for r in swapped for v in (r["sharpness_min"], r["sharpness_max"]) if np.isfinite(v)]
    return {
        "cases": len(results),
        "refused": [r["case"] for r in results if "refused" in r],
        "occluder": {**_passed(swapped, "occluder_pass"), "min": min(occluders, default=None)},
        "sharpness": {**_passed(swapped, "sharpness_pass"), "min": min(ratios, default=None),
                      "max": max(ratios, default=None)},
        "tone": _passed(swapped, "tone_pass"),
        "lighting": _passed(swapped, "lighting_pass"),
        "seam": {**_passed(swapped, "seam_pass"), "max": max((r["seam"] for r in swapped
                                                               if r.get("seam") is not None), default=None)},
        "identity": {**_passed(swapped, "identity_pass"),
                     "median": statistics.median(identities) if identities else None,
                     "max": max(identities, default=None)},
        "cost": {**_passed(swapped, "cost_pass"), "max": max((r["cost"] for r in swapped), default=None),
                 "analyser_calls_per_job": max((r["analyser_calls"] for r in swapped), default=None)},
    }


def _mark(verdict: bool | None) -> str:
    return "  -" if verdict is None else (" ok" if verdict else " NO")


def _number(value: float | None, form: str, scale: float = 1.0) -> str:
    return "-" if value is None or not np.isfinite(value) else format(scale * value, form)


def format_quality_report(report: dict) -> str:
    """A line per case (value and verdict per measure) and the overall lines."""
    header = (f"{'case':<16}{'occluder':>11}{'sharpness':>16}{'tone':>10}{'lighting':>11}{'seam':>10}"
              f"{'identity':>12}{'cost':>10}")
    lines = [f"memeswap bench --quality: {len(report['cases'])} corpus cases ({report['corpus']}), "
             f"swapper {report['swapper']}, {report['seconds']:.0f} s", header]
    for r in report["cases"]:
        if "refused" in r:
            lines.append(f"{r['case']:<16}refused: {r['refused']}")
            continue
        lines.append(
            f"{r['case']:<16}"
            f"{_number(r['occluder_kept'], '.0f', 100):>7}%{_mark(r['occluder_pass'])}"
            f"{_number(r['sharpness_min'], '.2f'):>7}-{_number(r['sharpness_max'], '.2f'):<5}"
            f"{_mark(r['sharpness_pass'])}"
            f"{_number(r['tone_progress'], '.2f'):>7}{_mark(r['tone_pass'])}"
            f"{_number(r['lighting_progress'], '.2f'):>8}{_mark(r['lighting_pass'])}"
            f"{_number(r['seam'], '.2f'):>7}{_mark(r['seam_pass'])}"
            f"{_number(r['identity'], '.3f'):>9}{_mark(r['identity_pass'])}"
            f"{_number(r['cost'], '.2f'):>6}x{_mark(r['cost_pass'])}")
    o = report["overall"]

    def count(key: str) -> str:
        return f"{o[key]['passed']}/{o[key]['measured']}"

    lines += [
        "",
        f"occluder pixels kept  {count('occluder')} cases >= {100 * OCCLUDER_GOAL:.0f}% "
        f"(lowest {_number(o['occluder']['min'], '.0f', 100)}%)",
        f"sharpness             {count('sharpness')} cases with every face within "
        f"{SHARPNESS_RANGE[0]}-{SHARPNESS_RANGE[1]}x the template's (seen {_number(o['sharpness']['min'], '.2f')}-"
        f"{_number(o['sharpness']['max'], '.2f')}x)",
        f"skin tone             {count('tone')} cases at least {TONE_GOAL:.0%} of the way to the selfie's L*",
        f"lighting              {count('lighting')} cases under {LIGHTING_GOAL:.0%} of the way to the selfie's "
        f"cheek balance",
        f"seam                  {count('seam')} cases <= {SEAM_GOAL} L*/px steeper than the template's edge "
        f"(worst {_number(o['seam']['max'], '.2f')})",
        f"identity              {count('identity')} cases < {IDENTITY_GOAL} (median "
        f"{_number(o['identity']['median'], '.3f')}, worst {_number(o['identity']['max'], '.3f')})",
        f"cost                  {count('cost')} cases <= {COST_GOAL}x a bare transcode (worst "
        f"{_number(o['cost']['max'], '.2f')}x); face analyser calls per job: {o['cost']['analyser_calls_per_job']}",
        "occluder: share kept; sharpness: output/template, lowest-highest face; tone and lighting: share of the way",
        "from the template's towards the selfie's; seam: L*/px beyond the template's edge; identity: on frames",
        "with the eyes and brows in view (\"-\": none; --json has every full-view frame's as",
        "identity_eyes_covered_too); cost: job/transcode",
    ]
    if o["refused"]:
        lines.append(f"refused selfies: {', '.join(o['refused'])}")
    return "\n".join(lines)
