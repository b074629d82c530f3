"""`tl-eval export --format lm-eval RUN_DIR` and `tl-eval lm-eval ARGS` (lm-eval's CLI with `tl-pair` registered)."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["lm-eval"]), default="lm-eval", show_default=True,
              help="Layout to write.")
@click.option("--output", type=click.Path(file_okay=False),
              help="Folder like lm-eval's --output_path (default: RUN_DIR/lm-eval).")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="TL_EVAL_DATA_DIR",
              help="Benchmark data the run used (to reload prompts); default: the run's own setting.")
def export(run_dir: str, fmt: str, output: str | None, data_dir: str | None) -> None:
    """Write a run in lm-eval's results layout: results_<timestamp>.json and samples_<task>_<timestamp>.jsonl."""
    from tl_eval.harness.errors import TLEvalError, fail
    from tl_eval.lmeval.export import export_run

    try:
        result = export_run(run_dir, output, data_dir)
    except TLEvalError as e:
        fail(e)
    click.echo(f"results: {result.results_path}")
    for task, path in result.samples_paths.items():
        click.echo(f"samples ({task}): {path}")


@click.command("lm-eval", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                            "help_option_names": []})
@click.argument("lm_eval_args", nargs=-1, type=click.UNPROCESSED)
def lm_eval_cmd(lm_eval_args: tuple[str, ...]) -> None:
    """Run lm-eval's command line with the `tl-pair` model registered, e.g.

    tl-eval lm-eval --model tl-pair --model_args planner=SPEC,executor=SPEC --tasks gsm8k
    """
    from tl_eval.lmeval.__main__ import main

    main(list(lm_eval_args))


COMMANDS = [export, lm_eval_cmd]
