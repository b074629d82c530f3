"""Compare lm-eval's GSM8K verdicts for the pair with tl-eval's own, problem by problem, and say why they differ."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.records import SampleRecord


@dataclass(frozen=True)
class ProblemAgreement:
    """One GSM8K problem seen by both routes."""

    doc_id: int
    problem_id: str
    gold: str
    lm_eval_pass: bool  # lm-eval's exact_match under the chosen filter, on lm-eval's executor text
    tl_eval_pass: bool  # tl-eval's own run (its prompt, its grader)
    tl_grader_on_lm_text: bool  # tl-eval's grader applied to lm-eval's executor text: isolates the grader
    lm_eval_extracted: str
    tl_eval_extracted: str | None
    same_output: bool  # both routes' executors wrote the same text
    reason: str  # empty when the verdicts agree

    @property
    def agree(self) -> bool:
        return self.lm_eval_pass == self.tl_eval_pass

    def to_dict(self) -> dict:
        return asdict(self) | {"agree": self.agree}


def read_lm_eval_samples(path: str | Path, filter_name: str) -> dict[int, dict]:
    """Rows of an lm-eval `samples_<task>_<timestamp>.jsonl` for one filter, by doc_id."""
    rows = {}
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})", "point at a file lm-eval wrote") from e
            if row.get("filter") == filter_name:
                rows[int(row["doc_id"])] = row
    if not rows:
        raise DataError(f"{path} has no rows for filter {filter_name!r}",
                        "use a filter of the task, e.g. strict-match or flexible-extract for gsm8k")
    return rows


def _reason(lm_pass: bool, tl_pass: bool, tl_on_lm: bool, same_output: bool, lm_extracted: str,
            tl_extracted: str | None, gold: str, filter_name: str) -> str:
    if lm_pass == tl_pass:
        return ""
    if lm_pass != tl_on_lm:  # the same text, graded differently: a grader difference
        if lm_extracted == "[invalid]":
            return (f"grader: lm-eval's {filter_name} regex found no answer in the text; tl-eval's extraction "
                    f"found {tl_extracted!r} and it equals the gold {gold!r}")
        if tl_on_lm:
            return (f"grader: lm-eval compares strings ({lm_extracted!r} vs gold {gold!r}); tl-eval compares "
                    f"numbers/expressions and finds them equal")
        return (f"grader: lm-eval's {filter_name} took {lm_extracted!r} as the answer; tl-eval's extraction took "
                f"{tl_extracted!r}, which does not equal the gold {gold!r}")
    if not same_output:
        return ("prompt: the executors wrote different texts (lm-eval's task prompt vs tl-eval's own prompt); "
                "both graders agree on lm-eval's text")
    return "unexplained: the same text, and tl-eval's grader agrees with lm-eval on it"


def compare_gsm8k(lm_rows: dict[int, dict], tl_records: list[SampleRecord], filter_name: str = "strict-match",
                  condition: str = "full", metric: str = "exact_match", math_pipeline: str = "strict",
                  grader_timeout_s: float = 5.0) -> list[ProblemAgreement]:
    """Match lm-eval doc i with tl-eval problem `gsm8k/i` (condition, sample 0) and explain every disagreement."""
    from tl_eval.harness.verify.math_grader import MathGrader, extract_answer

    tl_by_id = {r.problem_id: r for r in tl_records if r.condition == condition and r.sample_index == 0}
    pairs = [(doc_id, row, tl_by_id[f"gsm8k/{doc_id}"]) for doc_id, row in sorted(lm_rows.items())
             if f"gsm8k/{doc_id}" in tl_by_id]
    if not pairs:
        raise DataError("no problem is in both the lm-eval samples and the tl-eval run",
                        "run both on the same GSM8K test problems (the same --limit)")
    golds = [str(row["target"]).rsplit("####", 1)[-1].strip().replace(",", "") for _, row, _ in pairs]
    lm_texts = [row["resps"][0][0] for _, row, _ in pairs]
    grader = MathGrader(math_pipeline, timeout_s=grader_timeout_s)
    try:
        regraded = grader.grade(lm_texts, golds)
    finally:
        grader.close()
    out = []
    for (doc_id, row, rec), gold, text, verdict in zip(pairs, golds, lm_texts, regraded):
        lm_pass = float(row.get(metric, 0.0)) >= 1.0
        tl_pass = bool(rec.passed)
        extracted = row["filtered_resps"][0]
        extracted = extracted if isinstance(extracted, str) else json.dumps(extracted)
        tl_extracted = rec.artifact
        same = text.strip() == (rec.executor_output or "").strip()
        out.append(ProblemAgreement(
            doc_id=doc_id, problem_id=rec.problem_id, gold=gold, lm_eval_pass=lm_pass, tl_eval_pass=tl_pass,
            tl_grader_on_lm_text=verdict.passed, lm_eval_extracted=extracted,
            tl_eval_extracted=tl_extracted, same_output=same,
            reason=_reason(lm_pass, tl_pass, verdict.passed, same, extracted, extract_answer(text, math_pipeline),
                           gold, filter_name)))
    return out
