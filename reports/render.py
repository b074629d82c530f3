"""The jinja2 environment of the report and leaderboard templates."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tl_eval.reports import fmt


def md_cell(text) -> str:
    """Markdown table cells cannot hold pipes or newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def static(name: str) -> Markup:
    """The text of a file in reports/static, for inlining: every page works from file:// on its own."""
    return Markup(files("tl_eval.reports").joinpath("static", name).read_text())  # our own CSS/JS: not to be escaped


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("tl_eval.reports", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html.jinja", "html"), default=False),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=fmt.pct, pp=fmt.pp, pvalue=fmt.pvalue, md=md_cell,
                       tojson_compact=lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    env.globals.update(static=static)
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
