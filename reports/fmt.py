"""How numbers are written on every page: one function per kind, so pages and tests agree."""

from __future__ import annotations

from dataclasses import dataclass

from tl_eval.reports.systems import Value

DASH = "—"


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return DASH if x is None else f"{100 * x:.1f}"


def pp(x: float | None) -> str:
    """A difference of fractions as signed percentage points."""
    return DASH if x is None else f"{100 * x:+.1f}"


def pvalue(x: float | None) -> str:
    return DASH if x is None else f"{x:.3g}"


def count(x: float | None) -> str:
    return DASH if x is None else f"{x:.0f}"


def seconds(x: float | None) -> str:
    return DASH if x is None else f"{x:.2f}"


FORMATS = {"pct": pct, "pp": pp, "p": pvalue, "count": count, "sec": seconds}


@dataclass(frozen=True)
class Cell:
    """A formatted number with the raw value and provenance it was written from."""

    text: str
    value: float | None
    ci: str
    source: str
    divisor: int
    kind: str

    def to_dict(self) -> dict:
        return {"text": self.text, "value": self.value, "ci": self.ci, "source": self.source,
                "divisor": self.divisor, "kind": self.kind}


def cell(v: Value, kind: str = "pct") -> Cell:
    f = FORMATS[kind]
    ci = f"[{f(v.ci_low)}, {f(v.ci_high)}]" if v.value is not None and v.ci_low is not None else ""
    return Cell(f(v.value), v.value, ci, v.source, v.divisor, kind)
