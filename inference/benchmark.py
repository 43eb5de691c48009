"""`memeswap bench`: what a swap job costs next to a bare transcode of the same template.

Every figure comes from runs made here and now, interleaved over a few rounds and
reported as medians, so a noisy shared machine affects all of them alike.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import OutputFormat, StreamingEncoder, write_atomically
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.samples import sample_selfie
from memeswap.inference.templates.compile import analyse_frames
from memeswap.inference.templates.library import CompiledTemplate


def bare_transcode(template: CompiledTemplate, limits: MediaLimits, fmt: OutputFormat = "gif") -> float:
    started = time.perf_counter()
    with StreamingEncoder(fmt, fps=template.template.manifest.fps) as encoder:
        for frame in read_frames(template.template.media_path, limits, max_side=limits.max_template_side):
            encoder.write(frame)
        encoder.finish()
    return time.perf_counter() - started


def run_benchmark(maker: MemeMaker, template_name: str = "dramatic-zoom", rounds: int = 3) -> dict:
    analyser, library, limits = maker.analyser, maker.library, maker.limits
    analyser.prepare()
    selfie, _ = sample_selfie(analyser)
    compiled = maker.compile(template_name)
    runs: dict[str, list[float]] = {k: [] for k in
                                    ("transcode", "job", "selfie_analysis", "swap", "encode", "per_request_job")}
    for _ in range(rounds):
        runs["transcode"].append(bare_transcode(compiled, limits))
        result = maker.make(selfie, compiled, "gif")
        runs["job"].append(result.timings["total"])
        runs["selfie_analysis"].append(result.timings["selfie_analysis"])
        runs["swap"].append(result.timings["swap"])
        runs["encode"].append(result.timings["encode_finish"])
        started = time.perf_counter()
        frames = read_frames(compiled.template.media_path, limits, max_side=limits.max_template_side)
        per_request = CompiledTemplate(compiled.template,
                                       analyse_frames(frames, analyser, human_check=library.human_check))
        maker.make(selfie, per_request, "gif")
        runs["per_request_job"].append(time.perf_counter() - started)
    median = {k: statistics.median(v) for k, v in runs.items()}
    frame_count = compiled.tracks.frame_count
    peak_mb = _peak_memory_of_cli_swap(selfie, template_name)
    return {
        "template": template_name,
        "frames": frame_count,
        "size": f"{compiled.tracks.width}x{compiled.tracks.height}",
        "rounds": rounds,
        "cpu_count": os.cpu_count(),
        "selfie_analysis_s": round(median["selfie_analysis"], 4),
        "swap_s": round(median["swap"], 4),
        "swap_per_frame_ms": round(1000 * median["swap"] / frame_count, 2),
        "encode_tail_s": round(median["encode"], 4),
        "job_total_s": round(median["job"], 4),
        "bare_transcode_s": round(median["transcode"], 4),
        "job_over_transcode": round(median["job"] / median["transcode"], 3),
        "per_request_analysis_job_s": round(median["per_request_job"], 4),
        "compiled_speedup": round(median["per_request_job"] / median["job"], 2),
        "peak_memory_mb_cli_swap": peak_mb,
    }


def _peak_memory_of_cli_swap(selfie, template_name: str) -> float:
    """Peak resident memory of a separate `memeswap swap` process on the same job."""
    import cv2

    with tempfile.TemporaryDirectory() as folder:
        selfie_path = Path(folder) / "selfie.png"
        ok, png = cv2.imencode(".png", selfie[:, :, ::-1])
        write_atomically(selfie_path, png.tobytes())
        command = [sys.executable, "-m", "memeswap", "swap", str(selfie_path), "--template", template_name,
                   "--output", str(Path(folder) / "out.gif")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        assert process.stderr is not None, "stderr=PIPE"
        if status != 0:
            raise RuntimeError(f"memeswap swap failed: {process.stderr.read().decode(errors='replace')}")
        return round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux


def format_report(report: dict) -> str:
    return "\n".join([
        f"memeswap bench: template '{report['template']}', {report['frames']} frames at {report['size']}, "
        f"medians of {report['rounds']} rounds on {report['cpu_count']} cores",
        f"  selfie analysis          {report['selfie_analysis_s']:.3f} s  (the only analyser call of the job)",
        f"  swap                     {report['swap_s']:.3f} s  ({report['swap_per_frame_ms']:.1f} ms per frame)",
        f"  encode after last frame  {report['encode_tail_s']:.3f} s",
        f"  whole swap job           {report['job_total_s']:.3f} s",
        f"  bare transcode           {report['bare_transcode_s']:.3f} s  (decode + encode, no swap)",
        f"  job / transcode          {report['job_over_transcode']:.2f}x  (goal: <= 2.0x)",
        f"  per-request analysis job {report['per_request_analysis_job_s']:.3f} s  "
        f"(every template frame analysed per request)",
        f"  compiled tracks speed-up {report['compiled_speedup']:.1f}x",
        f"  peak memory, memeswap swap  {report['peak_memory_mb_cli_swap']:.0f} MB  (goal: < 1024 MB)",
    ])
