"""Reference traces of seed problems: the cleaned GSM8K rationale, and a rule-based plan of an MBPP solution."""

from __future__ import annotations

import ast
import re
import warnings

_CALC = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"\n?\s*####.*$", re.S)


def gsm8k_trace(rationale: str) -> str:
    """The rationale without `<<a*b=c>>` calculator annotations and without the final `#### N` line."""
    return _FINAL.sub("", _CALC.sub("", rationale)).strip()


# ---- MBPP: the documented rule (used when no --writer is given) -------------------------------------------
# One bullet per statement of each function body, in source order; compound statements (for, while,
# if/else, try, with) become a step that names their header, with their body as indented sub-steps, at most
# MAX_DEPTH levels deep. Expressions are quoted from the source, so the plan keeps the numbers, comparisons
# and range bounds that the perturbations act on. Module-level imports and helpers come first.

MAX_DEPTH = 4


def _q(node: ast.AST) -> str:
    return f"`{ast.unparse(node)}`"


def _describe(stmt: ast.stmt) -> tuple[str, list[list[ast.stmt]], list[str]]:
    """(sentence, bodies to describe below it, labels of those bodies)."""
    if isinstance(stmt, ast.Assign):
        targets = " and ".join(_q(t) for t in stmt.targets)
        return f"Set {targets} to {_q(stmt.value)}.", [], []
    if isinstance(stmt, ast.AnnAssign):
        return f"Set {_q(stmt.target)} to {_q(stmt.value) if stmt.value else 'a value'}.", [], []
    if isinstance(stmt, ast.AugAssign):
        return f"Update {_q(stmt.target)} with `{ast.unparse(stmt)}`.", [], []
    if isinstance(stmt, ast.Return):
        return (f"Return {_q(stmt.value)}." if stmt.value else "Return."), [], []
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return f"For each {_q(stmt.target)} in {_q(stmt.iter)}:", [stmt.body], [""]
    if isinstance(stmt, ast.While):
        return f"While {_q(stmt.test)} holds:", [stmt.body], [""]
    if isinstance(stmt, ast.If):
        bodies, labels = [stmt.body], [""]
        if stmt.orelse:
            bodies.append(stmt.orelse)
            labels.append("Otherwise:")
        return f"If {_q(stmt.test)}:", bodies, labels
    if isinstance(stmt, ast.Try):
        return "Try the following:", [stmt.body] + [h.body for h in stmt.handlers], [""] + [
            f"If {_q(h.type) if h.type else 'an error'} is raised:" for h in stmt.handlers]
    if isinstance(stmt, ast.With):
        return f"With {', '.join(_q(i.context_expr) for i in stmt.items)}:", [stmt.body], [""]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return f"Import what is needed with `{ast.unparse(stmt)}`.", [], []
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"Define a helper `{stmt.name}({ast.unparse(stmt.args)})`:", [stmt.body], [""]
    if isinstance(stmt, ast.ClassDef):
        return f"Define a class `{stmt.name}` holding the needed fields.", [], []
    if isinstance(stmt, ast.Expr):
        if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return "", [], []  # docstrings
        return f"Evaluate {_q(stmt.value)}.", [], []
    if isinstance(stmt, (ast.Break, ast.Continue, ast.Pass)):
        return {ast.Break: "Stop the loop.", ast.Continue: "Skip to the next item.", ast.Pass: "Do nothing."}[type(stmt)], [], []
    return f"Run `{ast.unparse(stmt).splitlines()[0]}`.", [], []


def _lines(body: list[ast.stmt], depth: int) -> list[str]:
    out = []
    for stmt in body:
        sentence, bodies, labels = _describe(stmt)
        if not sentence:
            continue
        out.append((depth, sentence))
        if depth + 1 >= MAX_DEPTH:
            if bodies:
                out[-1] = (depth, sentence.rstrip(":") + ", handling each case as the task requires.")
            continue
        for label, sub in zip(labels, bodies):
            if label:
                out.append((depth, label))
            out.extend(_lines(sub, depth + 1))
    return out


def mbpp_rule_plan(code: str, entry_point: str | None = None) -> str:
    """A bulleted plan describing the reference program, step by step, by the rule above."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # MBPP sources use "\d" in plain strings
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(code)
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    entry = next((f for f in funcs if f.name == entry_point), funcs[-1] if funcs else None)
    items: list[tuple[int, str]] = []
    for node in tree.body:
        if node is entry:
            continue
        items.extend(_lines([node], 0))
    if entry is not None:
        items.append((0, f"Write `{entry.name}({ast.unparse(entry.args)})` as follows."))
        items.extend(_lines(entry.body, 1))
    # Bullets, not numbers: a numbered marker would be a target for number_change and off_by_one.
    return "\n".join("  " * depth + f"- {sentence}" for depth, sentence in items)
