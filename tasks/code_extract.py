"""Pull the program out of an executor's answer: fenced blocks, bare code, completion-style bodies."""

from __future__ import annotations

import ast
import re
import warnings

# An opening fence with an optional language tag, the body, and a closing fence or the end of the text
# (a model cut off by max_tokens leaves the last block open).
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_PY_TAGS = {"", "python", "py", "python3", "Python"}
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")


def parse(code: str) -> ast.Module:
    """ast.parse without the DeprecationWarnings that model code (invalid escapes) triggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


def parses(code: str) -> bool:
    try:
        parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def defines(code: str, name: str | None) -> bool:
    """Whether `code` defines `name` at top level (a function, class or assignment)."""
    if not name:
        return True
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def fenced_blocks(text: str) -> list[str]:
    """Bodies of the Python (or untagged) fenced blocks, in order."""
    return [body for tag, body in _FENCE.findall(text) if tag in _PY_TAGS and body.strip()]


def _bare_code(text: str) -> str | None:
    """Code in an unfenced answer: the whole text if it parses, else the parsing span from the first code line."""
    if parses(text) and _looks_like_code(text):
        return text
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return None
    # Drop trailing prose a line at a time until the rest parses.
    for end in range(len(lines), start, -1):
        chunk = "\n".join(lines[start:end])
        if parses(chunk):
            return chunk
    return None


def _looks_like_code(text: str) -> bool:
    # A lone English sentence can parse as an expression ("Hello"); require a statement a program would have.
    try:
        tree = parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)


def prompt_imports(prompt: str) -> list[str]:
    """Top-level import lines of a signature prompt (HumanEval's `from typing import List`)."""
    try:
        tree = parse(prompt)
    except (SyntaxError, ValueError):
        return []
    return [ast.get_source_segment(prompt, n) or "" for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


def extract_program(output: str, entry_point: str | None, signature_prompt: str | None = None) -> str | None:
    """The program in `output`, or None when there is no code.

    Picks the last fenced block that defines `entry_point` (else the last fenced block), else bare code.
    With a `signature_prompt` (HumanEval), a block that does not define the function is a completion of
    the prompt, and the prompt's imports are prepended so that a function-only answer still runs.
    """
    if not output or not output.strip():
        return None
    blocks = fenced_blocks(output)
    if blocks:
        defining = [b for b in blocks if defines(b, entry_point)]
        code = (defining or blocks)[-1]
    else:
        code = _bare_code(output)
        if code is None and signature_prompt is not None and parses(signature_prompt + output):
            code = output  # an unfenced function body continuing the signature
    if code is None or not code.strip():
        return None
    code = code.strip("\n")
    if signature_prompt is not None:
        if not defines(code, entry_point):
            code = signature_prompt.rstrip("\n") + "\n" + code
        missing = [imp for imp in prompt_imports(signature_prompt) if imp and imp not in code]
        if missing:
            code = "\n".join(missing) + "\n\n" + code
    return code + "\n"
