"""`memeswap bench --soak`: a short run through the bot's path with a worker on Redis must
leave nothing behind (blobs, consumers, pending entries, temp files, track-cache growth).
The figures of a long run are a benchmark, printed and kept in the README, not asserted."""

import json
import os
import subprocess
import sys


def test_a_short_soak_leaves_nothing_behind(tmp_path):
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "memeswap", "bench", "--soak", "0.3", "--workers", "1", "--load",
                             "2", "--template", "bounce", "--json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["jobs"] >= 2 and report["failures"] == {}, report
    assert set(report["rss_end_mb"]) == {"bot shard", "worker 1"}
    assert all(mb > 0 for mb in report["rss_end_mb"].values())
    assert report["leftovers"] == {
        "blobs": 0, "blob keys": 0, "consumers beyond the live workers": 0, "pending entries": 0,
        "jobs-stream entries": 0, "jobs counted as waiting": 0, "users counted as active": 0,
        "unacknowledged results": 0, "temp files": 0, "track cache growth bytes": 0}, report["temp_left"]
