"""Trusted comparison for HumanEval+/MBPP+ tests, run inside the sandbox: evalplus's output-matching rules.

This module's source is embedded in each job's context, so it must stay self-contained (stdlib only).
"""

import copy as _tl_copy_mod


def _tl_copy(value):
    # Fresh inputs for each call: candidates and references may mutate their arguments.
    return _tl_copy_mod.deepcopy(value)


def _tl_is_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(i, float) for i in x)


def _tl_close(out, exp, atol, rtol=1e-07):
    # numpy.allclose's rule |out - exp| <= atol + rtol * |exp|, elementwise; hand-written so that the
    # sandboxed child does not import numpy for every test.
    if isinstance(exp, (list, tuple)):
        return isinstance(out, (list, tuple)) and len(out) == len(exp) and all(
            _tl_close(o, e, atol, rtol) for o, e in zip(out, exp))
    try:
        return abs(out - exp) <= atol + rtol * abs(exp)
    except TypeError:
        return False


def _tl_matches(out, exp, atol, oracle, inp):
    """Whether the candidate's `out` matches the reference's `exp` on input `inp` (evalplus semantics)."""
    try:
        if oracle == "find_zero":
            return abs(_poly(*inp, out)) <= atol  # noqa: F821 - from evalplus's oracles in the context
        exact = out == exp
        if oracle == "always":
            exact = True
        elif oracle == "sum_div":
            exact = exact or out == 0
        elif oracle == "surface_Area":
            exact = exact or abs(out - _surface_Area(*inp)) <= atol  # noqa: F821
        elif oracle == "digit_distance_nums":
            exact = exact or out == _digit_distance_nums(*inp)  # noqa: F821
        elif oracle == "set":
            exact = set(out) == set(exp)
        elif oracle == "not_none":
            exp = exp is not None
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if atol == 0 and _tl_is_floats(exp):
            atol = 1e-6
        if not exact and atol != 0:
            return type(out) is type(exp) and _tl_close(out, exp, atol)
        return bool(exact)
    except Exception:
        return False
