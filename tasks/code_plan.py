"""A plan of a reference program in words: the steps of its functions, without quoting code.

The rule (docs/faithfulness.md, "Reference plans"): one bullet per statement of the entry point's body, in
source order, after one bullet per helper and import; compound statements (for, while, if/else, try, with)
become a step that names what they loop over or test, with their body as indented sub-steps, at most
MAX_DEPTH levels deep. Expressions are described in words ("the length of numbers", "x is less than 0",
"item i of s"), never quoted: names of variables, parameters and functions and literal numbers may appear (a
problem statement names them too), operators, calls and brackets may not. A phrase that would grow past
MAX_PHRASE characters is replaced by a summary naming the values it uses. The words keep what the
perturbations act on (less than, ascending, first/last, exclusive, numbers), so the training groups' negatives
apply to these plans as they did to the old expression-quoting rule.
"""

from __future__ import annotations

import ast
import warnings

MAX_DEPTH = 5
MAX_PHRASE = 110

_BINOP = {ast.Add: "plus", ast.Sub: "minus", ast.Mult: "times", ast.Div: "divided by",
          ast.FloorDiv: "divided (rounding down) by", ast.Mod: "modulo", ast.Pow: "to the power of",
          ast.BitAnd: "bitwise-and", ast.BitOr: "bitwise-or", ast.BitXor: "bitwise-xor",
          ast.LShift: "shifted left by", ast.RShift: "shifted right by", ast.MatMult: "matrix-times"}
_AUG = {ast.Add: "Increase {t} by {v}.", ast.Sub: "Decrease {t} by {v}.", ast.Mult: "Multiply {t} by {v}.",
        ast.Div: "Divide {t} by {v}.", ast.FloorDiv: "Divide {t} by {v}, rounding down.",
        ast.Mod: "Replace {t} by its remainder modulo {v}."}
_CMP = {ast.Eq: "equals", ast.NotEq: "is not equal to", ast.Lt: "is less than", ast.LtE: "is at most",
        ast.Gt: "is greater than", ast.GtE: "is at least", ast.Is: "is", ast.IsNot: "is not", ast.In: "is in",
        ast.NotIn: "is not in"}
_CALLS = {"len": "the length of {0}", "sum": "the sum of {0}", "max": "the largest of {all}",
          "min": "the smallest of {all}", "abs": "the absolute value of {0}", "sorted": "{0} sorted in ascending order",
          "reversed": "{0} reversed", "int": "{0} as an integer", "float": "{0} as a decimal number",
          "str": "{0} as text", "list": "{0} as a list", "set": "the distinct items of {0}", "tuple": "{0} as a tuple",
          "dict": "{0} as a dictionary", "bool": "whether {0} is true", "enumerate": "each position and item of {0}",
          "zip": "{all} paired up item by item", "any": "whether any of {0} holds", "all": "whether all of {0} hold",
          "round": "{0} rounded", "ord": "the character code of {0}", "chr": "the character with code {0}",
          "print": "print {all}", "isinstance": "whether {0} is of type {1}", "map": "{1} with {0} applied to each item",
          "filter": "the items of {1} for which {0} holds"}
_METHODS = {"append": "{obj} with {0} appended", "extend": "{obj} extended by {0}", "split": "{obj} split into parts",
            "join": "the items of {0} joined by {obj}", "strip": "{obj} without surrounding spaces",
            "lower": "{obj} in lower case", "upper": "{obj} in upper case", "count": "how often {0} occurs in {obj}",
            "index": "the position of {0} in {obj}", "replace": "{obj} with {0} replaced by {1}",
            "startswith": "whether {obj} starts with {0}", "endswith": "whether {obj} ends with {0}",
            "items": "each key and value of {obj}", "keys": "the keys of {obj}", "values": "the values of {obj}",
            "get": "the entry {0} of {obj} (or a default)", "pop": "{obj} with an item removed",
            "add": "{obj} with {0} added", "sort": "{obj} sorted in ascending order", "reverse": "{obj} reversed",
            "isdigit": "whether {obj} is all digits", "isalpha": "whether {obj} is all letters",
            "isupper": "whether {obj} is upper case", "islower": "whether {obj} is lower case"}


def _names(node: ast.AST) -> list[str]:
    return list(dict.fromkeys(n.id for n in ast.walk(node) if isinstance(n, ast.Name)))


def _summary(node: ast.AST) -> str:
    names = _names(node)
    return f"a value computed from {', '.join(names[:4])}" if names else "the needed value"


def _const(value) -> str:
    if isinstance(value, str):
        if not value:
            return "an empty string"
        if value == " ":
            return "a space"
        return f'the text "{value}"' if len(value) <= 12 and "\n" not in value else "a fixed text"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def phrase(node: ast.AST | None) -> str:
    """The expression in words, at most MAX_PHRASE characters."""
    if node is None:
        return "nothing"
    text = _phrase(node)
    return text if len(text) <= MAX_PHRASE else _summary(node)


def _args(call: ast.Call) -> list[str]:
    return [_phrase(a) for a in call.args]


def _phrase(node: ast.AST) -> str:  # noqa: C901 - one case per node type reads best as one table
    p = _phrase
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return _const(node.value)
    if isinstance(node, ast.BinOp):
        return f"{p(node.left)} {_BINOP.get(type(node.op), 'combined with')} {p(node.right)}"
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return f"not ({p(node.operand)})"
        if isinstance(node.op, ast.USub):
            return f"minus {p(node.operand)}"
        return p(node.operand)
    if isinstance(node, ast.BoolOp):
        return f" {'and' if isinstance(node.op, ast.And) else 'or'} ".join(p(v) for v in node.values)
    if isinstance(node, ast.Compare):
        parts = [p(node.left)]
        for op, right in zip(node.ops, node.comparators):
            parts.append(f"{_CMP.get(type(op), 'compares with')} {p(right)}")
        return " and ".join(" ".join(parts[i:i + 2]) for i in range(0, len(parts) - 1)) if len(parts) > 2 else " ".join(parts)
    if isinstance(node, ast.IfExp):
        return f"{p(node.body)} if {p(node.test)}, else {p(node.orelse)}"
    if isinstance(node, ast.Call):
        args = _args(node)
        if isinstance(node.func, ast.Name):
            name = node.func.id
            if name == "range":
                if len(args) == 1:
                    return f"0 up to {args[0]}, exclusive"
                step = f" in steps of {args[2]}" if len(args) > 2 else ""
                return f"{args[0]} up to {args[1]}, exclusive{step}" if args else "a range"
            if name in _CALLS:
                template = _CALLS[name]
                if name == "sorted" and any(k.arg == "reverse" for k in node.keywords):
                    template = "{0} sorted in descending order"
                try:
                    return template.format(*args, all=" and ".join(args) or "nothing")
                except IndexError:
                    pass
            return f"the result of {name} on {' and '.join(args)}" if args else f"the result of {name}"
        if isinstance(node.func, ast.Attribute):
            obj, method = p(node.func.value), node.func.attr
            if method in _METHODS:
                try:
                    return _METHODS[method].format(*args, obj=obj)
                except IndexError:
                    pass
            with_args = f" with {' and '.join(args)}" if args else ""
            return f"{obj} after its {method} step{with_args}"
        return "the result of a call"
    if isinstance(node, ast.Attribute):
        return f"the {node.attr} of {p(node.value)}"
    if isinstance(node, ast.Subscript):
        target, index = p(node.value), node.slice
        if isinstance(index, ast.Slice):
            if index.lower is None and index.upper is None:
                if isinstance(index.step, ast.UnaryOp) and isinstance(index.step.op, ast.USub):
                    return f"{target} reversed"
                return f"every {p(index.step)}th item of {target}" if index.step else f"a copy of {target}"
            lo = f"from position {p(index.lower)} " if index.lower is not None else "from the start "
            hi = f"up to position {p(index.upper)} (exclusive)" if index.upper is not None else "to the end"
            return f"{target} {lo}{hi}"
        if isinstance(index, ast.Constant) and index.value == 0:
            return f"the first item of {target}"
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub) and getattr(index.operand, "value", None) == 1:
            return f"the last item of {target}"
        return f"item {p(index)} of {target}"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        kind = {ast.List: "list", ast.Tuple: "pair" if len(node.elts) == 2 else "tuple", ast.Set: "set"}[type(node)]
        return f"an empty {kind}" if not node.elts else f"the {kind} of {', '.join(p(e) for e in node.elts)}"
    if isinstance(node, ast.Dict):
        return "an empty dictionary" if not node.keys else "a dictionary of the needed entries"
    if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
        gen = node.generators[0]
        elt = node.key if isinstance(node, ast.DictComp) else node.elt
        where = "".join(f" where {p(c)}" for c in gen.ifs)
        kind = {ast.SetComp: "the set of", ast.DictComp: "a dictionary from"}.get(type(node), "")
        return f"{kind + ' ' if kind else ''}{p(elt)} for each {_target(gen.target)} in {p(gen.iter)}{where}"
    if isinstance(node, ast.Lambda):
        return f"a function of {', '.join(a.arg for a in node.args.args) or 'nothing'} giving {p(node.body)}"
    if isinstance(node, ast.JoinedStr):
        return "a formatted text of " + ", ".join(p(v.value) for v in node.values if isinstance(v, ast.FormattedValue))
    if isinstance(node, ast.Starred):
        return f"the items of {p(node.value)}"
    return _summary(node)


_STATEMENT_METHODS = {"append": "Append {0} to {obj}.", "extend": "Extend {obj} by {0}.", "add": "Add {0} to {obj}.",
                      "sort": "Sort {obj} in ascending order.", "reverse": "Reverse {obj}.",
                      "pop": "Remove an item from {obj}.", "remove": "Remove {0} from {obj}.",
                      "insert": "Insert {1} into {obj} at position {0}."}


def _target(node: ast.AST) -> str:
    """A loop or assignment target: the names of a tuple read as "a and b"."""
    if isinstance(node, (ast.Tuple, ast.List)):
        return " and ".join(_target(e) for e in node.elts)
    return phrase(node)


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
    return f"taking {', '.join(names)}" if names else "taking nothing"


def _describe(stmt: ast.stmt) -> tuple[str, list[list[ast.stmt]], list[str]]:
    """(sentence, bodies to describe below it, labels of those bodies)."""
    if isinstance(stmt, ast.Assign):
        return f"Set {' and '.join(_target(t) for t in stmt.targets)} to {phrase(stmt.value)}.", [], []
    if isinstance(stmt, ast.AnnAssign):
        return f"Set {phrase(stmt.target)} to {phrase(stmt.value) if stmt.value else 'a value'}.", [], []
    if isinstance(stmt, ast.AugAssign):
        t, v = phrase(stmt.target), phrase(stmt.value)
        return _AUG.get(type(stmt.op), "Update {t} with {v}.").format(t=t, v=v), [], []
    if isinstance(stmt, ast.Return):
        return (f"Return {phrase(stmt.value)}." if stmt.value else "Return."), [], []
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return f"For each {_target(stmt.target)} in {phrase(stmt.iter)}:", [stmt.body], [""]
    if isinstance(stmt, ast.While):
        return f"While {phrase(stmt.test)}:", [stmt.body], [""]
    if isinstance(stmt, ast.If):
        bodies, labels = [stmt.body], [""]
        if stmt.orelse:
            bodies.append(stmt.orelse)
            labels.append("Otherwise:")
        return f"If {phrase(stmt.test)}:", bodies, labels
    if isinstance(stmt, ast.Try):
        return "Try the following:", [stmt.body] + [h.body for h in stmt.handlers], [""] + [
            "If that fails:" for _ in stmt.handlers]
    if isinstance(stmt, ast.With):
        return f"With {', '.join(phrase(i.context_expr) for i in stmt.items)} open:", [stmt.body], [""]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else [stmt.module or "a module"]
        return f"Use the {', '.join(modules)} module.", [], []
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"Make a helper {stmt.name} {_params(stmt)}:", [stmt.body], [""]
    if isinstance(stmt, ast.ClassDef):
        return f"Make a class {stmt.name} holding the needed fields.", [], []
    if isinstance(stmt, ast.Expr):
        if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return "", [], []  # docstrings
        call = stmt.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _STATEMENT_METHODS:
            try:
                return _STATEMENT_METHODS[call.func.attr].format(*_args(call), obj=phrase(call.func.value)), [], []
            except IndexError:
                pass
        text = phrase(stmt.value)
        return text[0].upper() + text[1:] + ".", [], []
    if isinstance(stmt, ast.Raise):
        return "Raise an error.", [], []
    if isinstance(stmt, ast.Assert):
        return f"Check that {phrase(stmt.test)}.", [], []
    if isinstance(stmt, (ast.Break, ast.Continue, ast.Pass)):
        return {ast.Break: "Stop the loop.", ast.Continue: "Skip to the next item.", ast.Pass: "Do nothing."}[type(stmt)], [], []
    return "Do the remaining bookkeeping.", [], []


def _lines(body: list[ast.stmt], depth: int) -> list[tuple[int, str]]:
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


def code_plan(code: str, entry_point: str | None = None) -> str:
    """A bulleted plan of the program's entry point (helpers and imports first), in words by the rule above."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # MBPP sources use "\d" in plain strings
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(code)
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    entry = next((f for f in funcs if f.name == entry_point), funcs[-1] if funcs else None)
    items: list[tuple[int, str]] = []
    for node in tree.body:
        if node is not entry:
            items.extend(_lines([node], 0))
    if entry is not None:
        items.append((0, f"Write {entry.name} {_params(entry)} as follows."))
        items.extend(_lines(entry.body, 1))
    # Bullets, not numbers: a numbered marker would be a target for number_change and off_by_one.
    return "\n".join("  " * depth + f"- {sentence}" for depth, sentence in items)
