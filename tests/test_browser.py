"""The leaderboard site and the report in headless Chromium from file://: no console errors, sorting, the task
filter, drill-down and search; screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tl_eval.reports.leaderboard import build_leaderboard
from tl_eval.reports.report import build_report
from tests.test_reports_helpers import ARTIFACTS, scripted_runs  # noqa: F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 2300, "height": 1000})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


@pytest.fixture(scope="module")
def site(scripted_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_leaderboard([scripted_runs["good"], scripted_runs["weak"], scripted_runs["other"]], out, n_resamples=300)
    return out


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def visible_rows(page) -> list[dict]:
    return page.eval_on_selector_all("#leaderboard tbody tr:not(.hidden)", """rows => rows.map(r => ({
        task: r.dataset.task, system: r.cells[1].textContent.trim(),
        pass: r.cells[4].dataset.value === undefined ? null : parseFloat(r.cells[4].dataset.value),
        rank: r.cells[0].dataset.value === '' ? null : parseInt(r.cells[0].dataset.value)}))""")


def test_index_loads_sorts_and_filters(page, site):
    page.goto((site / "index.html").as_uri())
    assert page.title() == "tl-eval leaderboard"
    rows = visible_rows(page)
    assert {r["task"] for r in rows} == {"gsm8k"}  # the filter starts on the first task
    assert len(rows) == 5  # 3 pairs and 2 executors alone
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    shot(page, "leaderboard-index")

    page.click("#leaderboard th:nth-child(5)")  # pair pass@1: high to low
    by_pass = [r["pass"] for r in visible_rows(page)]
    assert by_pass == sorted(by_pass, reverse=True)
    page.click("#leaderboard th:nth-child(5)")  # again: low to high
    assert [r["pass"] for r in visible_rows(page)] == sorted(by_pass)
    page.click("#leaderboard th:nth-child(2)")  # system name: A to Z
    names = [r["system"] for r in visible_rows(page)]
    assert names == sorted(names, key=str.lower)
    shot(page, "leaderboard-sorted-by-system")

    page.select_option("#task-filter", "math500")
    rows = visible_rows(page)
    assert rows and {r["task"] for r in rows} == {"math500"}
    assert page.locator('#leaderboard tbody tr.hidden[data-task="gsm8k"]').count() == 5
    page.select_option("#task-filter", "")
    assert len(visible_rows(page)) == 10
    shot(page, "leaderboard-all-tasks")
    assert page.errors == []


def test_drill_down_opens_samples_with_search(page, site):
    page.goto((site / "index.html").as_uri() + "#task=math500")
    assert {r["task"] for r in visible_rows(page)} == {"math500"}
    link = page.locator('#leaderboard tbody tr:not(.hidden) a.drill').first
    name = link.inner_text()
    link.click()
    page.wait_for_load_state()
    assert "/systems/" in page.url and page.locator("h1").inner_text() == name
    assert page.input_value("#task-select") == "math500"
    total = page.locator('details.sample[data-task="math500"]:not(.hidden)').count()
    assert total == 20
    page.locator('details.sample[data-task="math500"]:not(.hidden)').first.click()  # open the first sample
    shot(page, "system-page")
    page.fill("#search", "math500/7")
    shown = page.locator("details.sample:not(.hidden)")
    assert shown.count() == 1 and "math500/7" in shown.first.locator("summary").inner_text()
    page.fill("#search", "")
    page.select_option("#status-filter", "fail")
    failing = page.locator("details.sample:not(.hidden)").count()
    assert 0 < failing < total
    assert page.errors == []


def test_report_html_loads_with_figures(page, scripted_runs, tmp_path):
    rep = build_report([scripted_runs["good"], scripted_runs["weak"]], tmp_path / "report", n_resamples=300)
    page.goto(rep.html.as_uri())
    widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == len(rep.figures) >= 4 and all(w > 300 for w in widths)
    assert "is better than" in page.inner_text("ul.verdicts")
    shot(page, "report")
    shutil.copytree(rep.out, ARTIFACTS / "report", dirs_exist_ok=True)
    assert page.errors == []


# ---- laptop widths (issue 32): the recorded entries plus two local runs, one of them the reference plan ----

@pytest.fixture(scope="module")
def laptop_site(tmp_path_factory):
    import tests.scripted_models  # noqa: F401  (registers the scripted models)
    from tl_eval.harness.config import RunConfig
    from tl_eval.harness.evaluate import prepare, run
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"benchmark data not found in {DATA_DIR}")
    tmp = tmp_path_factory.mktemp("laptop")
    for planner in ("reference", "scripted:vague-planner"):
        cfg = RunConfig(tasks=["gsm8k"], planner=planner, executor="scripted:follower", limit=20,
                        conditions=["full", "none", "masked"], output=str(tmp / "runs"), cache=str(tmp / "c.sqlite"),
                        data_dir=str(DATA_DIR))
        run(prepare(cfg), show_progress=False, log=lambda m: None)
    out = tmp / "site"
    build_leaderboard([tmp / "runs"], out, Path(__file__).resolve().parents[1] / "baselines" / "entries",
                      n_resamples=300)
    return out


WIDTH_CHECK = """() => {
  const wraps = Array.from(document.querySelectorAll('.table-wrap')).slice(0, 1);
  const table = document.getElementById('leaderboard');
  const heads = Array.from(table.tHead.rows[0].cells);
  const col = name => heads.find(h => h.textContent.trim().startsWith(name));
  const right = h => h ? h.getBoundingClientRect().right : null;
  return {wraps: wraps.map(w => [w.scrollWidth, w.clientWidth]), viewport: document.documentElement.clientWidth,
          page: document.documentElement.scrollWidth,
          cols: Object.fromEntries(['pass@1', 'uplift pp', 'uplift_masked', 'headroom'].map(n => [n, right(col(n))]))};
}"""


@pytest.mark.parametrize("width", [1280, 1024])
def test_leaderboard_first_table_fits_a_laptop(browser, laptop_site, width):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto((laptop_site / "index.html").as_uri())
        m = page.evaluate(WIDTH_CHECK)
        shot(page, f"leaderboard-{width}")
        for scroll, client in m["wraps"]:
            assert scroll <= client, m  # the first table does not scroll sideways
        assert m["page"] <= m["viewport"], m
        for name, right in m["cols"].items():
            assert right is not None and right <= m["viewport"], (name, m)
    finally:
        page.close()


REPORT_WIDTH_CHECK = """() => {
  const table = document.querySelector('section.task table.metrics');
  const heads = Array.from(table.tHead.rows[0].cells);
  const col = name => heads.find(h => h.textContent.trim().startsWith(name));
  return {viewport: document.documentElement.clientWidth, page: document.documentElement.scrollWidth,
          cols: Object.fromEntries(['pass@1', 'uplift pp', 'uplift_masked'].map(n => [n, col(n).getBoundingClientRect().right])),
          wraps: Array.from(document.querySelectorAll('.table-wrap')).map(w => w.getBoundingClientRect().right)};
}"""


@pytest.mark.parametrize("width", [1280, 1024])
def test_report_fits_a_laptop(browser, laptop_site, scripted_runs, width, tmp_path):
    """The report of the laptop runs and three more: the page never scrolls sideways (wide tables scroll in their
    own box), and the first table's pass@1, uplift and uplift_masked are in view."""
    runs = sorted(p.parent for p in (laptop_site.parent / "runs").rglob("results.json"))
    rep = build_report([*runs, scripted_runs["good"], scripted_runs["weak"], scripted_runs["other"]], tmp_path,
                       n_resamples=200, figures_too=False)
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto(rep.html.as_uri())
        m = page.evaluate(REPORT_WIDTH_CHECK)
        shot(page, f"report-{width}")
        assert m["page"] <= m["viewport"], m
        assert all(right <= m["viewport"] for right in m["cols"].values()), m
        assert m["wraps"] and all(right <= m["viewport"] for right in m["wraps"]), m
    finally:
        page.close()
