"""`memeswap bench --startup`: what a new user waits for and what the install weighs.

The size of the environment memeswap runs in (its `sys.prefix`: a fresh venv holds memeswap
and its dependencies only), and the wall time of `memeswap --help` and `memeswap templates
list` as separate processes, the median of a few runs each.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def folder_bytes(folder: Path) -> int:
    total = 0
    for path, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                continue
    return total


def command_seconds(args: list[str], rounds: int) -> float:
    """Median wall time of `python -m memeswap ARGS`, started fresh each round."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "memeswap", *args], capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_startup_benchmark(rounds: int = 5) -> dict:
    return {
        "python": platform.python_version(),
        "environment": sys.prefix,
        "environment_mb": round(folder_bytes(Path(sys.prefix)) / 2**20, 1),
        "help_s": round(command_seconds(["--help"], rounds), 3),
        "templates_list_s": round(command_seconds(["templates", "list"], rounds), 3),
        "rounds": rounds,
    }


def format_startup_report(report: dict) -> str:
    return (f"Python {report['python']}, environment {report['environment']}: {report['environment_mb']:.0f} MB\n"
            f"memeswap --help          {report['help_s']:.2f} s (median of {report['rounds']})\n"
            f"memeswap templates list  {report['templates_list_s']:.2f} s")
