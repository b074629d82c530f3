"""The committed baseline entries: a recorded greedy entry re-runs, without the cache, within the rule that
`tl-eval baselines reproduce` applies (docs/training.md, "Reproducing an entry"), on whichever CPU kind CI has;
and the same re-run judged against a recorded vector with a real regression fails.

Its first 40 problems, not all 100: a subset is batched differently, so it is judged by the near-tie noise rule
(never exactly), which is also the rule between machines; the whole entry took 8 min on an AMD machine of this
kind, too much of the suite's 20 minutes."""

import importlib.util
import shutil

import pytest

from tl_eval.training import baselines as B

needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
LIMIT = 40


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~3-5 min alone; the suite's 900 s limit is too close on a shared machine
@needs_llama
@pytest.mark.parametrize("name", ["gsm8k-executor-alone"])
def test_a_recorded_greedy_entry_reproduces(name, data_dir, tmp_path):
    shipped = B.baselines_dir()
    assert B.entry_path(name, shipped).is_file(), f"the repository records {name}"
    root = tmp_path / "baselines"  # the reproduction's run directory goes under tmp_path/runs, not the repository
    for sub in ("recipes", "entries"):
        (root / sub).mkdir(parents=True)
        suffix = ".yaml" if sub == "recipes" else ".json"
        shutil.copy(shipped / sub / f"{name}{suffix}", root / sub / f"{name}{suffix}")
    result = B.reproduce(name, limit=LIMIT, root=root)
    assert len(result.problems) == LIMIT and not result.exact
    assert result.ok, "\n".join(result.summary())

    # The same outcomes against a recorded vector in which 8 of these problems passed that now fail (a 20-point
    # regression of this subset, as a broken prompt or decoding change would give): the rule must catch it.
    recorded = dict(zip(result.problems, result.recorded_pass))
    failing_now = [pid for pid, now in zip(result.problems, result.now_pass) if now == 0 and pid not in result.differ]
    for pid in failing_now[:8]:
        recorded[pid] = 1.0
    regressed = B.compare_outcomes(name, result.condition, recorded, dict(zip(result.problems, result.now_pass)),
                                   result.machine_differences, result.whole_entry)
    assert len(failing_now) >= 8 and not regressed.ok, "\n".join(regressed.summary())
