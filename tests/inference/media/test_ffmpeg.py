import subprocess
import sys
import time

from memeswap.inference.media.ffmpeg import wait_for_exit


def test_wait_for_exit_gives_the_status_and_kills_a_process_past_its_deadline():
    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_for_exit(quick, timeout=30) == 3
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = time.monotonic()
    assert wait_for_exit(stuck, timeout=0.3) < 0  # killed by a signal
    assert time.monotonic() - started < 10
