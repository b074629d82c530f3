"""`tl-eval report --pool`: two groups of systems (training seeds) compared pooled over seeds."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.metrics.paired import paired_bootstrap_ci, pooled_bootstrap
from tl_eval.reports.cli import report as report_cmd
from tl_eval.reports.pooled import parse_pools
from tl_eval.reports.report import build_report
from tests.run_files import sample_rows
from tests.test_reports_helpers import make_run, scripted_runs  # noqa: F401  (scripted_runs is a fixture)


def test_one_seed_per_group_is_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    a, b = (rng.random(200) < 0.5).astype(float), (rng.random(200) < 0.4).astype(float)
    est, low, high, p = pooled_bootstrap(a[None], b[None], n_resamples=4000)
    ref = paired_bootstrap_ci(a, b, n_resamples=4000)
    assert est == pytest.approx(ref[0]) and low == pytest.approx(ref[1], abs=0.01) and high == pytest.approx(ref[2], abs=0.01)
    assert 0 <= p <= 1 and (p < 0.05) == (low > 0 or high < 0)


def test_seeds_that_disagree_widen_the_interval():
    rng = np.random.default_rng(4)
    base = (rng.random(300) < 0.4).astype(float)
    steady = np.stack([base, base, base])
    # Same mean over seeds, but one seed far above and one far below: the seed level must show in the CI.
    spread = np.stack([np.clip(base + (rng.random(300) < 0.3), 0, 1), base, base * (rng.random(300) < 0.5)])
    _, lo_s, hi_s, _ = pooled_bootstrap(steady, steady[:1], n_resamples=3000)
    _, lo_w, hi_w, _ = pooled_bootstrap(spread, steady[:1], n_resamples=3000)
    assert (lo_s, hi_s) == (0.0, 0.0)
    assert hi_w - lo_w > 0.1


def test_identical_groups_differ_by_nothing():
    x = (np.random.default_rng(5).random((3, 100)) < 0.5).astype(float)
    est, low, high, p = pooled_bootstrap(x, x, n_resamples=500)
    # The seeds of each group are resampled apart: the spread between seeds stays in the interval.
    assert est == 0.0 and p == 1.0 and low < 0 < high
    with pytest.raises(ValueError, match="same problems"):
        pooled_bootstrap(x, x[:, :50])


def test_pool_options():
    assert parse_pools(["tl=a,b", "eo=c", "tl=d"]) == {"tl": ["a", "b", "d"], "eo": ["c"]}
    assert parse_pools([]) == {}
    with pytest.raises(ConfigError, match="LABEL=DIR"):
        parse_pools(["tl"])
    with pytest.raises(ConfigError, match="two"):
        parse_pools(["tl=a"])


def test_report_pools_two_groups_of_runs(scripted_runs, tmp_path):
    from tests.conftest import DATA_DIR

    good, weak = scripted_runs["good"], scripted_runs["weak"]
    # A second "seed" of the good planner (another run id; the scripted planner writes the same traces).
    good2 = make_run(tmp_path / "seed2", "rep-plan-good", data_dir=DATA_DIR, limit=20, seed=99)
    rep = build_report([], tmp_path / "out", n_resamples=1000, figures_too=False,
                       pools={"good": [str(good), str(good2)], "weak": [str(weak)]})
    assert len(rep.runs) == 3
    d = next(x for x in rep.pooled if x.task == "gsm8k" and x.metric == "pass@1")

    def full(run):
        return {r["problem_id"]: r["passed"] for r in sample_rows(run, "gsm8k") if r["condition"] == "full"}

    fa, fa2, fb = full(good), full(good2), full(weak)
    assert d.n == 20 and len(d.seeds_a) == 2 and len(d.seeds_b) == 1
    assert d.mean_a == pytest.approx((np.mean(list(fa.values())) + np.mean(list(fa2.values()))) / 2)
    assert d.diff == pytest.approx(d.mean_a - np.mean(list(fb.values())))
    assert d.ci_low <= d.diff <= d.ci_high
    assert {x.metric for x in rep.pooled if x.task == "gsm8k"} == {"pass@1", "uplift"}
    md = rep.markdown.read_text()
    assert "## Pooled over seeds" in md and d.sentence() in md
    assert "Pooled over seeds" in rep.html.read_text()

    result = CliRunner().invoke(report_cmd, ["--out", str(tmp_path / "cli"), "--no-figures", "--n-resamples", "500",
                                             "--pool", f"good={good},{good2}", "--pool", f"weak={weak}"])
    assert result.exit_code == 0, result.output
    assert "Pooled over seeds" in result.output
