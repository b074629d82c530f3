"""`python -m tl_eval.lmeval ARGS`: lm-eval's command line with the `tl-pair` model registered."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Register `tl-pair`, then hand over to lm-eval's own CLI (same flags, same outputs)."""
    try:
        from lm_eval.__main__ import cli_evaluate
    except ImportError:
        sys.exit("error: lm-eval is not installed\n  fix: pip install 'tl-eval[lmeval]'")
    import tl_eval.lmeval.model  # noqa: F401  (registers the model)

    saved = sys.argv
    if argv is not None:  # lm-eval's parser reads sys.argv itself
        sys.argv = [sys.argv[0], *argv]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
