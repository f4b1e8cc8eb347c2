"""Memory each workflow job declares (star/resources.py): from the config and input sizes, bounded where it must be."""

import json
import re
from pathlib import Path

from star import config as star_config
from star import resources
from star.data.cache import write_cache
from tests.caches import features_of

REPO = Path(__file__).resolve().parents[1]


def soccernet_half(path: Path) -> Path:
    """A file the size of a 2700-s half of 8576-d float32 features (sparse: no disk used)."""
    with open(path, "wb") as f:
        f.truncate(2700 * 8576 * 4)
    return path


def test_spotting_inference_memory_grows_with_the_half_not_with_the_half_times_the_batch(tmp_path):
    cfg = star_config.section("", None)
    half = soccernet_half(tmp_path / "half.h5")
    need = resources.mem_mb("spotting_infer", cfg, {"model": [], "features": half})
    assert need < 2500  # the issue: ~75 GB when every window carried its half
    bigger = star_config.section("", '{"spotting": {"infer_batch_size": 512}}')
    added = resources.mem_mb("spotting_infer", bigger, {"model": [], "features": half}) - need
    assert 0 < added < 1000  # another 256 windows, not another 256 halves
    assert abs(resources.mem_mb("spotting_infer", cfg, {"features": half}, attempt=2) - 2 * need) <= 1


def test_inference_over_a_split_holds_one_half_or_one_game_at_a_time(tmp_path):
    cfg = star_config.section("", None)
    halves = [soccernet_half(tmp_path / f"{i}.h5") for i in range(40)]
    for rule in ("spotting_infer", "captioning_infer"):
        one = resources.mem_mb(rule, cfg, {"model": [], "features": halves[:2]})
        assert resources.mem_mb(rule, cfg, {"model": [], "features": halves}) == one  # 20 games, one job
    one_half_games = star_config.section("", '{"dataset": {"halves": [1]}}')
    added = (resources.mem_mb("captioning_infer", cfg, {"features": halves})
             - resources.mem_mb("captioning_infer", one_half_games, {"features": halves}))
    assert 2 * 80 < added < 2 * 100  # a game's second half: read and standardised (2 x 88 MiB)


def test_training_memory_follows_cache_mb_workers_and_half_grouping(tmp_path):
    halves = [soccernet_half(tmp_path / f"{i}.h5") for i in range(10)]
    inputs = {"manifest": [], "features": halves}

    def need(**train):
        text = json.dumps({"model": {"cache_mb": 2048}, "spotting": {"train": train}})
        return resources.mem_mb("spotting_train", star_config.section("", text), inputs)

    uniform, grouped = need(batch_size=8), need(batch_size=8, halves_per_batch=1)
    assert uniform - grouped > 7 * 2 * 88  # 7 fewer distinct halves a batch
    assert need(batch_size=8, halves_per_batch=1, workers=2) - grouped >= 2 * 2048  # a store per worker


def test_the_feature_dimension_comes_from_the_cache(tmp_path):
    path = write_cache(tmp_path / "f.h5", "features", {"features": features_of(300, 16, 1)}, {}, game="g", half=1,
                       fps=1.0, dim=16, encoder="test")
    cfg = star_config.section("", None)
    small = resources.mem_mb("spotting_infer", cfg, {"features": path})
    assert small < resources.mem_mb("spotting_infer", cfg, {"features": tmp_path / "not yet written.h5"})


def test_every_rule_declares_its_memory():
    declared, rules = set(), set()
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        rules |= set(re.findall(r"^\s*rule (\w+):", text, re.M))
        declared |= set(re.findall(r'mem_mb=mem_mb\("(\w+)"\)', text))
    assert rules and rules == declared


def test_training_keeps_freed_memory_for_the_next_half():
    """After keep_freed_memory (training calls it), a freed 92-MB-class array stays in the process for the next one
    instead of going back to the kernel; without it glibc unmaps it at once."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from star.data.halves import keep_freed_memory\n"
            "kept = keep_freed_memory() if sys.argv[1] == 'keep' else None\n"
            "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
            "a = np.ones((2700, 8576), np.float32); peak = rss(); del a\n"
            "print(kept, round(peak - rss()))\n")
    released = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, cwd=REPO, check=True)
        kept, freed_mb = out.stdout.split()
        released[mode] = (kept, int(freed_mb))
    assert released["keep"] == ("True", released["keep"][1]) and released["keep"][1] < 10   # still resident
    assert released["default"][1] > 80  # handed back: the next half would fault in fresh pages


def test_a_finished_run_cancels_snakemakes_replanning_timers_and_no_other():
    """Snakemake re-plans on non-daemon timers: left pending, the last keeps a finished run alive for 10 s."""
    import threading

    def replan():
        pass

    def other():
        pass

    replan.__module__ = "snakemake.scheduling.job_scheduler"
    timers = [threading.Timer(60, replan), threading.Timer(60, other)]
    for timer in timers:
        timer.start()
    try:
        assert resources.cancel_replanning() == 1
        timers[0].join(timeout=5)
        assert not timers[0].is_alive() and timers[1].is_alive()
    finally:
        timers[1].cancel()
