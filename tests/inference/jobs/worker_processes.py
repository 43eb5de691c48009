"""`StreamWorker`s in processes of their own (tests/inference/jobs/stream_worker_process.py),
started, SIGKILLed and replaced by the tests that kill workers."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


class WorkerProcesses:
    """Worker processes running tests/inference/jobs/stream_worker_process.py."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.alive: dict[str, subprocess.Popen] = {}
        self.started = 0
        self.killed = 0

    def spawn(self) -> str:
        self.started += 1
        name = f"proc{self.started}"
        self.alive[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.inference.jobs.stream_worker_process", self.url, self.prefix, name],
            cwd=ROOT)
        return name

    def kill(self, name: str) -> None:
        process = self.alive.pop(name)
        process.kill()  # SIGKILL: no clean-up, no goodbye
        process.wait()
        self.killed += 1

    def replace_the_dead(self) -> int:
        dead = [name for name, process in self.alive.items() if process.poll() is not None]
        for name in dead:
            del self.alive[name]
            self.spawn()
        return len(dead)

    def stop_all(self) -> None:
        for process in self.alive.values():
            process.kill()
            process.wait()
        self.alive.clear()
