"""A lead compares two recipes in the browser: an experiment of two arms (random and a
threshold) over 200 real examples with a tiny budget, created on the page with its arms added as
rows, run with the Run button, followed live, and its leaderboard shown."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.datasets.importer import import_file
from app.datasets.records import join_prompt
from app.datasets.service import create_dataset
from app.scoring.service import start_score_job
from tests.browser.conftest import errors_of, screenshot
from tests.factories import unique, write_json
from tests.training.tiny_model import build_tiny_base, short_records


def test_a_lead_runs_an_experiment_and_reads_its_leaderboard(
    page_as: Callable[..., Any],
    db: Callable[[], AbstractContextManager[Session]],
    run_jobs: Callable[[], dict[int, str]],
    server_env: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    records = short_records(data_dir, 200)
    texts = [join_prompt(r["instruction"], r["input"]) + " " + r["output"] for r in records]
    # Under the server's data folder: a folder Sift may read models from.
    base = build_tiny_base(Path(server_env["SIFT_DATA_DIR"]) / "models" / unique("tiny"), texts)
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        import_file(session, pool, write_json(tmp_path / "pool.json", records))
        start_score_job(session, pool, "length")
        pool_name = pool.name
    assert set(run_jobs().values()) == {"succeeded"}
    name = unique("compare")
    page = page_as("lead")

    page.goto("/experiments")
    form = page.locator("#experiment-form")
    form.locator("input[name=name]").fill(name)
    form.locator("select[name=dataset]").select_option(pool_name)
    form.locator("input[name=budget]").fill("8")
    form.locator("input[name=heldout]").fill("20")
    rows = form.locator("#arm-rows input[name=arm]")
    assert rows.count() == 2  # random and longest, to start from
    rows.nth(0).fill("random")
    rows.nth(1).fill("threshold:length>=20")
    page.click("#add-arm")
    rows.nth(2).fill("sometimes")  # not an arm: the page says so
    form.locator("input[name=base_model]").fill(str(base))
    form.locator("select[name=template]").select_option("alpaca")
    form.locator("input[name=max_steps]").fill("2")
    form.locator("textarea[name=settings]").fill(
        "max_seq_length=64\nmicro_batch_size=4\nbatch_size=4"
    )
    form.locator("input[name=eval]").fill("ifeval:3")
    form.locator("input[name=max_tokens]").fill("8")
    with page.expect_navigation():
        form.get_by_role("button", name="Create the experiment").click()
    assert "arm: 'sometimes' is not one of" in page.locator("[role=alert]").inner_text()
    rows = page.locator("#arm-rows input[name=arm]")
    assert rows.count() == 3 and rows.nth(1).input_value() == "threshold:length>=20"
    page.locator("#arm-rows .remove-arm").nth(2).click()
    assert rows.count() == 2
    with page.expect_navigation():
        page.get_by_role("button", name="Create the experiment").click()
    page.wait_for_url(f"**/experiments/{name}")
    assert "20 examples held out" in page.locator(".page-head").inner_text()

    with page.expect_navigation():
        page.click("#run-experiment")
    # Queued: the board polls, the run's badge says so; a worker takes it from here.
    page.locator("#run-state .badge-queued").wait_for()
    assert page.locator("#board[hx-trigger='every 2s']").count() == 1
    states = run_jobs()
    assert set(states.values()) == {"succeeded"}, states
    # The page sees the end by itself (htmx), without a reload.
    page.locator("#run-state .badge-succeeded").wait_for(timeout=30_000)
    board = page.locator("#leaderboard")
    for arm in ("random", "threshold:length>=20"):
        row = board.locator(f"tr[data-arm='{arm}']")
        assert row.locator("td").nth(1).inner_text() == "8"
        for metric in ("heldout_loss", "prompt_strict"):
            cell = row.locator(f"td[data-metric='{metric}']")
            assert cell.locator("b").count() == 1 and cell.locator("svg").count() == 1
    assert page.locator("#overlap tbody tr").count() == 2
    figure = page.locator("#distributions svg.distributions")
    assert figure.locator("g[data-arm]").count() == 2
    assert "length@1" in page.locator("#distributions select").input_value()
    screenshot(page, "experiment-leaderboard")
    assert errors_of(page) == []
