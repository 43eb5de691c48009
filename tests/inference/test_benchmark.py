"""`memeswap bench`'s figures come from swaps run as a worker runs them."""

import pytest

from memeswap.inference import benchmark
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.pipeline import run_swap


def test_the_benchmark_loads_dlibs_detectors_once_as_a_process_does(library, analyser, swapper, monkeypatch):
    """A worker loads its human-face check once (the library's); a swap that loaded its own
    would add a model load to every timed job."""
    loaded = []
    real_prepare = HumanFaceCheck.prepare

    def counting_prepare(self):
        if self._cnn is None:
            loaded.append(self)
        real_prepare(self)

    monkeypatch.setattr(HumanFaceCheck, "prepare", counting_prepare)
    monkeypatch.setattr(benchmark, "_peak_memory_of_cli_swap", lambda selfie, name: 0.0)  # a process of its own
    report = benchmark.run_benchmark(MemeMaker(analyser, swapper, library, MediaLimits()), template_name="wobble", rounds=1)
    assert report["frames"] > 0 and report["job_total_s"] > 0
    assert all(check is library.human_check for check in loaded), loaded


def test_a_swap_is_given_the_process_human_check(compiled_builtins, analyser, swapper, astronaut):
    with pytest.raises(TypeError, match="human_check"):
        run_swap(astronaut, compiled_builtins("wobble"), analyser, swapper)
