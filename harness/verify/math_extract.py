"""Final-answer extraction for math outputs (named pipelines) and exact numeric normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from tl_eval.harness.errors import ConfigError, DataError

PIPELINES = ("strict", "flexible", "strict-match")
# lm-eval's gsm8k `strict-match` filter, asked for by name: the first `#### N` (digits, `.`, `,`, a sign),
# wherever it stands, headings and later corrections notwithstanding. Its documented regex, not its code:
# lm-eval is an optional extra.
_LM_EVAL_STRICT_MATCH = re.compile(r"#### (\-?[0-9\.\,]+)")

# --- strict markers -------------------------------------------------------------------------------------

_HASHES = re.compile(r"(?<!#)####(?!#)[ \t]*([^\n]*)")
# What follows `####` in a markdown heading: words ("Step 1: ...", "Final Answer") or a section number
# ("3. Total", "2) Cost"), never a quantity such as "18" or "3 apples".
_HEADING_TEXT = re.compile(r"(?:\(?[A-Za-z]\)\s+)?[^\W\d_]{2,}|\d+(?:\.\d+)*\s*[.):]\s+[^\W\d_]{2,}")
# Words that make an answer phrase or box a supposition, a hedge or a question, not the answer given.
# Only close before the marker ("if the answer is 5", "or maybe \\boxed{4}"): "If she sells them all, the answer
# is 18." commits to 18.
# Negations ("6, not \\boxed{5}"), attributions and judgements ("a student claimed", "it is wrong to say",
# "one might think") and checks ("let me double-check:") close before a marker make it uncommitted as well.
# Matched as words, not as one regular expression: that was the slowest step of extraction.
_UNCOMMITTED_WORDS = frozenset(
    "if whether suppose supposing assume assuming unless maybe perhaps claim claims claimed "
    "claiming mistake mistaken mistakenly wrong wrongly incorrect incorrectly might would could tempting check "
    "recheck verify think thinks thought say says said suggest suggests suggested guess guessed expect expected "
    "example wrote written previously earlier initially originally".split()
)
_NEGATIONS = frozenset(("not", "never"))  # right before the marker only: "the total is not 5, so the answer is 6"
_WORDS_BEFORE = re.compile(r"[\w$']+")


def _uncommitted_before(window: str) -> bool:
    """Whether the words just before a marker (the last three) suppose, hedge, negate or attribute it."""
    if not window or window[-1:].isalnum():
        return False  # the marker is glued to a word: no word of its own stands before it
    words = [w.lower() for w in _WORDS_BEFORE.findall(window[-80:])[-3:]]
    if not words:
        return False
    last = words[-1]
    if last in _NEGATIONS or last.endswith("n't") or words[-2:] in (["instead", "of"], ["rather", "than"]):
        return True  # "6, not \\boxed{5}", "6 instead of \\boxed{5}"; "working instead is \\boxed{140}" commits
    for i, w in enumerate(words):
        if w in _UNCOMMITTED_WORDS and not (w == "think" and i > 0 and words[i - 1] in ("i", "we")):
            return True
    return False


# Objects of "the answer is" that are a judgement or a pointer, not an answer.
_NOT_AN_ANSWER = re.compile(
    r"\s*\**\s*(?:not\s+)?(?:correct|incorrect|right|wrong|reasonable|valid|invalid|consistent|plausible|"
    r"accurate|confirmed|verified|as\s+follows|below|above|the\s+following|shown|given\s+(?:below|above))\b",
    re.IGNORECASE,
)
# Words before "answer" that make the phrase a check of the answer, not a statement of it.
_NOT_OWN_ANSWER = re.compile(r"\b(?:our|my|your|their|this|check|checking|verify|verifying|confirm|confirming)\s+$",
                             re.IGNORECASE)
# A line that starts a new problem: the model ran on into a few-shot style continuation.
_NEW_QUESTION = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:question|problem|exercise|q)[ \t]*\d*[ \t]*(?:\*\*)?[ \t]*[:.]",
    re.IGNORECASE | re.MULTILINE,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
# "The answer is X", "the final answer is X", "Final Answer: X", "**Final Answer:** X", "answer is: X", "Answer: X".
_ANSWER_PHRASE = re.compile(
    r"\b(?:the\s+)?(?:final\s+|correct\s+)?answer\s*\**\s*(?:is\b\s*:?|:)\s*\**\s*",
    re.IGNORECASE,
)
# A sentence ends at a period, `!` or `?` followed by whitespace or the end (a decimal point is not one).
_SENTENCE_END = re.compile(r"(?:(?<!\.)\.(?!\.)|[!?])(?=\s|$)")  # an ellipsis ("0.333...") is not one
_ELLIPSIS_END = re.compile(r"\d\s*(?:\.\.\.|…|\\[lc]?dots)$")
_MATH_SPANS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))

# --- numbers --------------------------------------------------------------------------------------------

_MINUS = "\u2212"
# One number token of the `flexible` pipeline: optional sign (only where it cannot be a binary minus),
# optional dollar sign, digits with thousands separators, decimals, or a simple fraction a/b or \frac{a}{b}.
_NUMBER_TOKEN = re.compile(
    r"""
    (?:(?<![\w)\]}])(?P<sign>[-\u2212]))?
    \\?\$?\s?
    (?:
        \\[dt]?frac(?:\{\s*(?P<fnum>-?\d+)\s*\}\{\s*(?P<fden>\d+)\s*\}|(?P<fnum1>\d)(?P<fden1>\d))
      | (?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?!,\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?:/(?P<den>\d+(?!\.\d)))?
    )
    """,
    re.VERBOSE,
)
_PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_FRACTION_FORMS = (
    re.compile(r"(?P<sign>-?)\\[dt]?frac\{(?P<a>-?[\d.]+)\}\{(?P<b>-?[\d.]+)\}"),
    re.compile(r"(?P<sign>-?)\\[dt]?frac(?P<a>\d)(?P<b>\d)"),  # \frac12, as LaTeX allows
    re.compile(r"(?P<sign>-?)(?P<a>[\d.]+)/(?P<b>[\d.]+)"),
)
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mbox|mathrm)\s*\{([^{}]*)\}")
# Unit words after a number ("18 dollars", "5 cm"): letters only, two or more, separated by whitespace,
# so that algebra such as "5x" or "5 x" is never read as a number.
_UNIT_TAIL = re.compile(r"(.*?\d)(?:\s+[A-Za-z]{2,}\.?)+")
_MAX_NUMBER_CHARS = 400  # Fraction of a longer literal is fine, but nothing real is that long
# Words after a number that change its value: "2 hundred" is not 2, "5 squared" is not 5.
_SCALING_WORDS = frozenset(
    "hundred hundreds thousand thousands million millions billion billions trillion trillions dozen dozens "
    "squared cubed".split()
)
# Words after a number that make it a bound, a hedge or a calculation, never a unit: "3 or more".
_NOT_UNIT_WORDS = _SCALING_WORDS | frozenset(
    "or and more less fewer than least most not plus minus over under above below approximately about".split()
) | frozenset(  # and words that begin a clause, an operation, a range or another number: never a unit
    "is was are were be been being am has have had do does did will would can could should may might must shall "
    "if only unless when whenever whether though although but except instead rather my your our his her its "
    "their this that these those we you he she they it wrong right correct incorrect guess guessed answer "
    "times multiplied divided by mod modulo factorial power powers to through till until from point ± "
    "half halves third thirds quarter quarters fourth fourths fifth fifths sixth sixths eighth eighths "
    "tenth tenths hundredth hundredths percent zero one two three four five six seven eight nine ten eleven "
    "twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty "
    "seventy eighty ninety out vs versus maybe perhaps possibly probably either neither nor no wait actually hmm oops sorry "
    "hold on".split()
)
_MAX_UNIT_WORDS = 3  # "18 square feet", "5 miles per hour"; a longer run of words is a clause, not a unit
# What may follow a number's unit words without changing it: the end, punctuation, or a clause word.
_CLAUSE_WORDS = frozenset("because since which as so for in per each altogether total where".split())
_TAIL_TOKEN = re.compile(r"[ \t]*(?:(±|∓|&|→|⇒|≈|~|\\pm\b|\+/-)|([^\W\d_]+)|(\d))")
# An alternative after the answer: "5 or maybe 6", "5 (or 6)", "5; or 6", "5 — or 6", "5 in the first case".
_ALTERNATIVE = re.compile(
    r"(?:[\s(,;:\u2014\u2013$-]|\\[)\]])*(?:or|otherwise|alternatively|maybe|perhaps|possibly|if|unless|assuming|provided|"
    r"only\s+if|(?:which|that|this)?\s*(?:is|was|would\s+be)\s+(?:wrong|incorrect|not\b|a\s+mistake))\b"
    r"(?!\s+(?:more|less|fewer|greater|so|higher|lower|larger|smaller|above|below|about|approximately|roughly)\b)"
    r"|.*?\b(?:(?:first|second|third|other|one|either|each)\s+cases?|for\s+part\s*\(?[a-z0-9]\b)",
    re.IGNORECASE,
)

# --- the expression an answer phrase starts with ----------------------------------------------------------

_LEAD_IN = re.compile(
    r"\s*(?:(?:approximately|about|exactly|therefore|thus|hence|so|then|just|simply|that|equal\s+to|equals)\b[\s,:]*)+",
    re.IGNORECASE,
)
_MATH_WORDS = frozenset(
    "pi sqrt cbrt infinity infty inf ln log exp sin cos tan cot sec csc arcsin arccos arctan".split()
)
_MATH_CHARS = set("+-*/^_=<>.,;:!|'%$\u2212\u00b7\u00d7\u00f7\u00b0\u221a\u03c0")
_LIST_ITEM = re.compile(r"\s+(?:[A-Za-z]\s*=\s*)?[-\u2212]?\\?\$?\d")  # "or 6", "and x = 3"
# Words that make a number a bound or a hedge: "3 or more", "at least 3", "more than 5".
_QUALIFIER = re.compile(
    r"\s*(?:or\s+(?:more|less|fewer|greater|so|higher|lower|larger|smaller|above|below)|(?:at|the)\s+(?:least|most)"
    r"|(?:more|less|fewer|greater|other)\s+than|over|under|nearly|almost|roughly|around|up\s+to|not|no)\b",
    re.IGNORECASE,
)
# What may follow a quantity that is the whole answer: nothing, a bracket, or a clause of prose.
_ANSWER_ENDS = re.compile(r"\s*(?:$|[,;(\u2014\u2013]|:(?!\d)|(?:because|since|which|as|so|for|in|per|each|altogether)\b)", re.I)
_LIST_GOES_ON = re.compile(r"\s*,\s*(?:and\s+|or\s+)?(?:[-\u2212$\\\d]|[A-Za-z]\s*=)")
_PROSE_AFTER = re.compile(r"\s+[^\W\d_]{2,}\b")  # "I think", "a lot": a lone letter before a word is prose


def check_pipeline(pipeline: str) -> str:
    if pipeline not in PIPELINES:
        raise ConfigError(
            f"unknown math extraction pipeline {pipeline!r}",
            f"use one of: {', '.join(PIPELINES)}",
        )
    return pipeline


def extract_answer(text: str, pipeline: str) -> str | None:
    """The final answer in `text` under the named pipeline, or None when it finds none."""
    check_pipeline(pipeline)
    if text is None:
        return None
    if pipeline == "strict-match":
        return extract_strict_match(text)
    return extract_strict(text) if pipeline == "strict" else extract_flexible(text)


def extract_strict_match(text: str) -> str | None:
    """lm-eval's gsm8k `strict-match`: the number after the first `#### ` of the text, as written."""
    match = _LM_EVAL_STRICT_MATCH.search(text)
    return match.group(1).strip() if match else None


# An answer stands at the start of what follows its marker: reading further than this is never needed, and
# bounding every look-ahead and look-behind keeps extraction linear in the length of the output.
_MAX_REST = 2000
_CONTEXT = 200


def extract_strict(text: str) -> str | None:
    """The last final answer the text commits to: a `####` line, a `\\boxed{...}` or an answer phrase.

    Position decides, not the kind of marker: a later "The answer is 36." retracts an earlier `#### 40`.
    Markdown headings (`#### Step 1`), answer phrases whose object is no answer ("the answer is correct"),
    conditional ones ("if the answer is 5") and anything after a new question the model went on to write
    are not answers. After a marker the answer is what follows it: a math span, or the quantity or
    expression it starts with ("The answer is 3 apples, and 7 oranges were left." gives `3`).
    """
    text, found = _before_new_question(text)
    if not found:
        return None
    position, answer = max(found)
    if _RETRACTION.search(text, position + 1):
        return None  # "The answer is 5. Wait, that's wrong." and no answer after it: nothing is committed to
    return answer


# Words after the last answer that take it back.
_RETRACTION = re.compile(
    r"\b(?:that|this|it)(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not\s+(?:right|correct)|a\s+mistake)\b"
    r"|\bwait\s*[,.!]|\bactually,?\s+no\b|\boops\b",
    re.IGNORECASE,
)


def _rest_of_line(text: str, pos: int) -> str:
    end = text.find("\n", pos, pos + _MAX_REST)
    return text[pos : end if end >= 0 else pos + _MAX_REST]


def _final_answers(text: str) -> list[tuple[int, str]]:
    """(position, answer) of every committed final-answer marker of `text`."""
    found = []
    braces = _brace_map(text)
    for match in _HASHES.finditer(text):
        if not _is_heading(match.group(1)[:_MAX_REST]):
            answer = _phrase_answer(match.group(1)[:_MAX_REST])
            if answer:
                found.append((match.start(), answer))
    previous: tuple[int, str] | None = None  # (end, content) of the box before
    for match in _BOXED.finditer(text):
        content = _group_after(text, match.end(), braces)
        close = braces.get(_skip_blanks(text, match.end()))
        if content is None or not content.strip():
            continue
        alternative = previous is not None and _OR_BETWEEN.fullmatch(text, previous[0], match.start()) and (
            _differ(previous[1], content))
        previous = (close + 1, content) if close is not None else None
        if alternative:
            continue  # "\\boxed{5} or \\boxed{6}": a hedge ("\\boxed{1\\frac14} or \\boxed{1.25}" commits)
        if _committed(text, match.start()):
            if close is not None and (_ALTERNATIVE.match(text, close + 1, close + 1 + _CONTEXT) or _OPERATED.match(
                    text, close + 1, close + 1 + _CONTEXT)):
                continue  # "\\boxed{5} or ...", "\\boxed{5}, if ...", "\\boxed{5} is wrong": no commitment
            found.append((match.start(), content.strip()))
    for match in _ANSWER_PHRASE.finditer(text):
        if _NOT_OWN_ANSWER.search(text, max(0, match.start() - 24), match.start()):
            continue  # "We may check our answer: ...": a check, not the answer
        answer = _answer_after_phrase(text, match)
        if answer and _committed(text, match.start()):
            found.append((match.start(), answer))
    return found


def _answer_after_phrase(text: str, match: re.Match) -> str | None:
    rest = _rest_of_line(text, match.end())
    # "Final Answer: The final answer is 5." nests one phrase in another: the inner one, found on its own
    # and later, holds the answer.
    if _ANSWER_PHRASE.match(rest.strip(" *")):
        return None
    if rest.strip().strip("*").strip() in ("", "$$", "\\[", "$"):
        rest = _display_after(text, match.end())  # "is:" then display math
    if _NOT_AN_ANSWER.match(rest):
        return None  # "so the answer is correct."
    return _phrase_answer(rest)


def _display_after(text: str, pos: int) -> str:
    """The block after an answer phrase that ends its line ("is:"): up to the next blank line."""
    block = text[pos : pos + _MAX_REST].lstrip(" \t*:")
    block = block.lstrip("\n")
    end = block.find("\n\n")
    return (block if end < 0 else block[:end]).replace("\n", " ")


def _is_heading(rest: str) -> bool:
    """Whether what follows `####` is a markdown heading ("Step 1: ...", "3. Total") rather than an answer."""
    rest = rest.strip().lstrip("*").strip()
    return not rest or bool(_HEADING_TEXT.match(rest))


def _committed(text: str, pos: int) -> bool:
    """Whether the marker at `pos` states an answer, rather than supposing, hedging or asking one."""
    window = max(0, pos - _CONTEXT // 2, text.rfind("\n", max(0, pos - _CONTEXT // 2), pos) + 1)
    sentence_start = max([window, *(m.end() for m in _SENTENCE_END.finditer(text, window, pos))])
    if _uncommitted_before(text[sentence_start:pos]):
        return False
    limit = text.find("\n", pos, pos + _CONTEXT)
    limit = limit if limit >= 0 else min(len(text), pos + _CONTEXT)
    question = text.find("?", pos, limit)
    if question < 0:
        return True
    end = _SENTENCE_END.search(text, pos, question + 2)
    return not (end and text[end.start()] == "?")


def _before_new_question(text: str) -> tuple[str, list[tuple[int, str]]]:
    """`text` up to a new question the model started after answering (a run-on few-shot continuation),
    with the final answers of what is kept."""
    found = _final_answers(text)
    if not found:
        return text, found
    first = min(found)[0]
    tries = 0
    for match in _NEW_QUESTION.finditer(text, first + 1):
        # The answers of the whole text before this question are nearly always those of the prefix; they
        # are computed again for the prefix only a bounded number of times.
        prefix = text[: match.start()]
        kept = _final_answers(prefix)
        if kept:
            return prefix, kept
        tries += 1
        if tries >= 3:
            break
    return text, found


def extract_flexible(text: str) -> str | None:
    """The last number in the text, normalised: no thousands separators, no `$`, `%` dropped, e.g. `-3/4`.

    The last number is read as the whole quantity it belongs to ("3 and a half" is 3.5, "2 1/2" is 2.5,
    "2 pi" is `2\\pi`) and the whole set it is an element of (`\\{0, 3\\}`, so an extra root is not
    a pass); text after a new question the model went on to write is not read.
    """
    text, _ = _before_new_question(text)
    tokens = list(_NUMBER_TOKEN.finditer(text))
    if not tokens:
        return None
    last = tokens[-1]
    group = _enclosing_set(text, last.start(), last.end())
    if group is not None:
        return group
    for token in tokens[-2:]:  # the one before the last may begin a mixed number ("2 1/2")
        quantity = read_quantity(text, token.start())
        reads_more = quantity is not None and (quantity.end > last.end() or (
            token is not last and quantity.end >= last.end()))
        if reads_more and (quantity.decimal is None or quantity.pi):
            return quantity.latex().replace("\\%", "")
    return _token_text(last)


def _token_text(token: re.Match) -> str:
    sign = "-" if token.group("sign") else ""
    if token.group("fnum") is not None or token.group("fnum1") is not None:
        num = token.group("fnum") or token.group("fnum1")
        den = token.group("fden") or token.group("fden1")
        if num.startswith("-"):
            sign, num = ("" if sign else "-"), num[1:]
        return f"{sign}{num}/{den}"
    number = token.group("num").replace(",", "")
    if token.group("den") is not None:
        number += "/" + token.group("den")
    return sign + number


def _enclosing_set(text: str, start: int, end: int) -> str | None:
    """`\\{...\\}` around text[start:end] when it lists several elements, else None."""
    opener = text.rfind("\\{", 0, start)
    if opener < 0 or "\\}" in text[opener:start]:
        return None
    closer = text.find("\\}", end)
    if closer < 0 or "\\{" in text[end:closer]:
        return None
    content = text[opener + 2 : closer]
    return f"\\{{{content.strip()}\\}}" if "," in content else None


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` (or `\\fbox`), braces balanced; `\\boxed 5` also counts."""
    for match in reversed(list(_BOXED.finditer(text))):
        content = _group_after(text, match.end())
        if content is not None and content.strip():
            return content.strip()
    return None


def gold_from_gsm8k(answer_field: str) -> str:
    """The number after the last `####` of a GSM8K answer, without thousands separators."""
    if not answer_field or "####" not in answer_field:
        raise DataError(
            f"GSM8K answer has no '####' line: {str(answer_field)[:80]!r}",
            "pass the dataset's `answer` field unchanged (it ends with '#### N')",
        )
    gold = answer_field.rsplit("####", 1)[1].strip()
    if not gold:
        raise DataError("GSM8K answer has nothing after '####'", "check the data file")
    return gold.replace(",", "")


def gold_from_math_solution(solution: str) -> str | None:
    """The last `\\boxed{}` content of a MATH solution, or None if it has none."""
    return last_boxed(solution or "")


def to_fraction(answer: str | None) -> Fraction | None:
    """The answer as an exact number if it is one (units-free after normalisation), else None.

    Accepts thousands separators (`1,000`, `10,\\!000`), `$`, `%`, degrees, a trailing period, unit
    words ("18 dollars"), decimals, `a/b` and `\\frac{a}{b}`. No exponents, so no literal can be huge.
    """
    if answer is None:
        return None
    s = _normalise_number_text(answer)
    if not s or len(s) > _MAX_NUMBER_CHARS:
        return None
    if _PLAIN_NUMBER.fullmatch(s):
        return Fraction(s.replace(",", ""))
    for form in _FRACTION_FORMS:
        m = form.fullmatch(s)
        if m:
            a, b = _fraction_part(m.group("a")), _fraction_part(m.group("b"))
            if a is None or b is None or b == 0:
                return None
            value = a / b
            return -value if m.group("sign") else value
    return None


# --- quantities read whole ------------------------------------------------------------------------------
# Hand-written rather than a library: the vocabulary is small and fixed (English number words, a few
# currencies and units), the reader must report how far it read (to fix an answer's extent), and no
# well-kept package does both (word2number/text2num read words only and cannot be added here anyway).

_WORD_VALUES = {
    w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split())
} | {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALE_VALUES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_DENOMINATOR_WORDS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "eighth": 8, "eighths": 8, "tenth": 10, "tenths": 10,
}
_CURRENCY_PREFIX = re.compile(r"(?:\\\$|\$|£|€|¥|₹|US\$|(?:USD|EUR|GBP|JPY|INR|CAD|AUD|Rs\.?)(?=\s?\d))\s?")
# Money units whose hundredth is the next word: "7 dollars and 25 cents", "3 pounds and 40 pence".
_MAIN_MONEY = r"(?:dollars?|bucks|euros?|pounds?|usd|eur|gbp)"
_CENTS = re.compile(r"\s+and\s+(?P<n>\d{1,2}|[a-z]+(?:[- ][a-z]+)?)\s+(?:cents?|pence|p)\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_DEGREE_MARK = re.compile(
    r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b|\\textdegree\b)\s*(?:\\(?:text|mathrm)\{\s*[CFK]\s*\}|[CFK]\b)?"
    r"|\s+degrees?(?:\s+(?:celsius|fahrenheit|centigrade|kelvin|[CF]\b))?",
    re.IGNORECASE,
)
_PERCENT_MARK = re.compile(r"\s*(?:\\%|%|\s+per\s?cent\b)", re.IGNORECASE)
_PI_FACTOR = re.compile(r"\s*(?:\\pi\b|π|pi\b)")
_WORD = re.compile(r"([A-Za-z]+)")
_NEXT_WORD = re.compile(r"[-\s]+([A-Za-z]+)")
_WORD_AFTER_AND = re.compile(r"\s+(?:" + "|".join(_WORD_VALUES) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    """A number read whole from the start of a text: value, what it counts in, and where reading stopped."""

    value: Fraction
    end: int
    decimal: str | None = None  # the digits as written, when no arithmetic combined them ("0.333333")
    percent: bool = False
    pi: bool = False

    def latex(self) -> str:
        """The quantity as an expression both comparisons read: `7.25`, `-5/2`, `2\\pi`, `25\\%`."""
        if self.decimal is not None:
            text = self.decimal
        elif self.value.denominator == 1:
            text = str(self.value.numerator)
        elif _terminates_fraction(self.value):
            text = _decimal_text(self.value)
        else:
            text = f"{self.value.numerator}/{self.value.denominator}"
        if self.pi:
            text = "\\pi" if text == "1" else f"-\\pi" if text == "-1" else f"{text}\\pi"
        return text + ("\\%" if self.percent else "")


def read_quantity(text: str, pos: int = 0) -> Quantity | None:
    """The quantity written at `pos`: digits or number words, with its currency, compound and marks.

    Reads "3 and a half" (7/2), "2 1/2" (5/2), "7 dollars and 25 cents" (7.25), "£1,250", "twenty-five",
    "2 hundred" (200), "2 pi", "25 percent", "-5 °C" (-5). Unit words after it are not read (the caller
    decides what may follow); words that make the number a bound or hedge are the caller's concern too.
    """
    m = re.compile(r"\s*(?P<sign>[-\u2212]\s?)?").match(text, pos)
    sign, i = (-1 if m.group("sign") else 1), m.end()
    currency = _CURRENCY_PREFIX.match(text, i)
    if currency:
        i = currency.end()
        if sign == 1 and text.startswith(("-", "\u2212"), i):
            sign, i = -1, i + 1
    number = _read_number(text, i)
    if number is None:
        return None
    value, i, decimal = number
    extra = _read_fraction_tail(text, i, value)
    if extra is not None:
        value, i, decimal = value + extra[0], extra[1], None
    scale = re.compile(r"\s+(" + "|".join(_SCALE_VALUES) + r"|dozen)\b", re.IGNORECASE).match(text, i)
    if scale:
        value *= 12 if scale.group(1).lower() == "dozen" else _SCALE_VALUES[scale.group(1).lower()]
        i, decimal = scale.end(), None
    money = re.compile(r"\s+" + _MAIN_MONEY + r"\b", re.IGNORECASE).match(text, i)
    cents = _CENTS.match(text, money.end() if money else i) if (money or currency) else None
    if cents:
        hundredths = _read_number(cents.group("n"), 0)
        if hundredths is not None and hundredths[1] == len(cents.group("n")) and hundredths[0] < 100:
            value, i, decimal = value + hundredths[0] / 100, cents.end(), None
    percent = _PERCENT_MARK.match(text, i)
    degree = None if percent else _DEGREE_MARK.match(text, i)
    pi = None if (percent or degree) else _PI_FACTOR.match(text, i)
    i = (percent or degree or pi).end() if (percent or degree or pi) else i
    if decimal is not None and sign < 0:
        decimal = "-" + decimal
    return Quantity(sign * value, i, decimal, percent=bool(percent), pi=bool(pi))


def _read_number(text: str, pos: int) -> tuple[Fraction, int, str | None] | None:
    """Digits (`1,250`, `.5`, `3/4`) or English number words at `pos`: (value, end, digits as written)."""
    digits = _DIGITS.match(text, pos)
    if digits:
        end, written = digits.end(), digits.group(0).replace(",", "")
        if len(written) > _MAX_NUMBER_CHARS:
            return None  # Fraction() of a few thousand digits raises (int's digit limit) and ends a batch
        over = re.compile(r"/(\d{1,400})(?![\d.])").match(text, end)
        if over and int(over.group(1)):
            return Fraction(written) / int(over.group(1)), over.end(), None
        return Fraction(written), end, written
    return _read_number_words(text, pos)


def _read_number_words(text: str, pos: int) -> tuple[Fraction, int, None] | None:
    """"twenty-five", "one hundred and five", "three quarters", "a half": (value, end, None)."""
    total, current, i, last = 0, 0, pos, None  # last: the kind of the previous word
    while True:
        word = (_WORD if last is None else _NEXT_WORD).match(text, i)
        if not word:
            break
        w = word.group(1).lower()
        kind = _word_kind(w)
        if kind == "and" and last in ("hundred", "scale") and _WORD_AFTER_AND.match(text, word.end()):
            i = word.end()
            continue
        if kind is None or not _follows(last, kind, w):
            break
        if kind in ("unit", "teen", "tens"):
            current += _WORD_VALUES[w]
        elif kind == "hundred":
            current = (current or 1) * 100
        else:
            total, current = total + (current or 1) * _SCALE_VALUES[w], 0
        i, last = word.end(), kind
    if last is not None:
        value = Fraction(total + current)
        tail = _NEXT_WORD.match(text, i)
        if tail and tail.group(1).lower() in _DENOMINATOR_WORDS and 1 <= value < 10:  # "three quarters"
            return value / _DENOMINATOR_WORDS[tail.group(1).lower()], tail.end(), None
        return value, i, None
    article = re.compile(r"(?:a|an|one)\s+(half|quarter|third)\b", re.IGNORECASE).match(text, pos)
    if article:
        return Fraction(1, _DENOMINATOR_WORDS[article.group(1).lower()]), article.end(), None
    return None


def _word_kind(w: str) -> str | None:
    if w in _WORD_VALUES:
        v = _WORD_VALUES[w]
        return "unit" if v < 10 else "teen" if v < 20 else "tens"
    if w == "hundred":
        return "hundred"
    if w in _SCALE_VALUES:
        return "scale"
    return "and" if w == "and" else None


def _follows(last: str | None, kind: str, w: str) -> bool:
    """Whether a number word of `kind` continues a number whose previous word was of kind `last`."""
    if kind in ("unit", "teen", "tens"):
        if last == "tens":
            return kind == "unit" and _WORD_VALUES[w] > 0  # "twenty five", not "twenty twelve"
        return last in (None, "hundred", "scale")  # "five twenty" is two numbers
    if kind == "hundred":
        return last in ("unit", "teen", "tens")  # "hundred" alone is not read as 100
    return kind == "scale" and last in ("unit", "teen", "tens", "hundred")


def _read_fraction_tail(text: str, pos: int, whole: Fraction) -> tuple[Fraction, int] | None:
    """The fractional part after a whole number: "2 1/2", "3 and a half", "2 and 3/4", "one and two thirds"."""
    if whole.denominator != 1:
        return None
    mixed = re.compile(r"[ \t]+(\d{1,400})/(\d{1,400})(?![\d.,/])").match(text, pos)
    if mixed and 0 < int(mixed.group(1)) < int(mixed.group(2)):
        return Fraction(int(mixed.group(1)), int(mixed.group(2))), mixed.end()
    joined = re.compile(r"\s+and\s+").match(text, pos)
    if joined:
        part = _read_number(text, joined.end())
        if part is not None and 0 < part[0] < 1:
            return part[0], part[1]
    return None


def _terminates_fraction(value: Fraction) -> bool:
    q = value.denominator
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def _decimal_text(value: Fraction) -> str:
    """A terminating fraction as its decimal digits (7.25), exact."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    digits = str((value * 10**places).numerator).rjust(places + 1, "0")
    return sign + (digits[:-places] + "." + digits[-places:] if places else digits)


# --- reading an extracted answer -------------------------------------------------------------------------

_CLOCK = re.compile(r"(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?\s*(?P<ampm>[ap]\.?\s?m\.?)?", re.IGNORECASE)
# "(C) 12", "C) 12", "\text{(C)} 12", "(C)": a multiple-choice label, possibly with the option's value.
_OPTION = re.compile(r"(?:\\text\{\s*)?\(?(?P<letter>[A-E])\)(?:\s*\})?\s*(?P<value>.*)|(?P<bare>[A-E])", re.DOTALL)
# An option's value is a quantity or expression: another label ("(A) or (B)", "(A) (B) (C)") or a word
# ("(A) not") makes the answer no single option.
_NOT_OPTION_VALUE = re.compile(r"\(\s*[A-E]\s*\)|(?<![\\\w])[A-E]\)|(?<![\\A-Za-z])[A-Za-z]{2,}|^\s*[,;]")
_OPTION_SET = re.compile(r"\s*\(?([A-E])\)?\s*(?:(?:,\s*(?:and\s+)?|and\s+)\(?([A-E])\)?\s*)+")
_REPEATING = re.compile(
    r"(?P<sign>-?)(?P<int>\d*)\.(?P<fixed>\d*)\s*\\(?:overline|bar|dot)\s*\{?(?P<rep>\d+)\}?"
    r"|(?P<sign2>-?)(?P<int2>\d*)\.(?P<digits>\d+)\s*(?:\.\.\.|…|\\[lc]?dots)"
)
# "30 (18 + 12)": a number followed by the arithmetic that produced it, not a product.
_WORKING = re.compile(r"(?P<n>[-\u2212]?[\d.,]+)\s+\((?P<w>[\d\s.,+\-*/×÷=\u2212]+)\)")
_WORKING_AFTER = re.compile(r"\s+\([\d\s.,+\-*/×÷=\u2212]+\)")
_EMPTY_SET = re.compile(r"\\varnothing\b|\\\{\s*\\\}")
_IMAGINARY = re.compile(r"\\(?:mathrm|text|textrm|mathit|textit)\s*\{\s*i\s*\}|\\imath\b")
_UNIT_WORD = re.compile(r"\s*(?:\\(?:text|mathrm|textrm|mbox)\s*\{\s*([A-Za-z]+\.?(?:\s+[A-Za-z]+\.?)*)\s*\}|([A-Za-z]{2,})\b\.?)")


def read_answer(answer: str) -> str:
    """The answer as both comparisons read it: a quantity whole, the notation plain.

    "3 and a half hours" is `3.5`, "7 dollars and 25 cents" `7.25`, "£1,250" `1250`, "2 1/2" `2.5`,
    "2 pi" `2\\pi`, "25 percent" `25\\%`, "−5 °C" `-5`, "0.8\\overline{3}" `5/6`, "(C) 12" `12`,
    "30 (18 + 12)" `30`, `3 - 4\\mathrm{i}` `3 - 4i`. Anything else comes back as it was (stripped).
    """
    s = _unwrap_span(answer.strip().strip("*").strip()).replace(_MINUS, "-").replace("π", "\\pi")
    s = _IMAGINARY.sub("i", s)
    # A box inside an answer ("6 instead of \\boxed{5}", kept whole because it is no single value) would be
    # what math-verify extracts from it: only its brace group stays.
    s = _BOXED.sub("", s)
    s = _EMPTY_SET.sub(r"\\emptyset", s)
    option = _option(s)
    if option and option[1]:
        s = option[1]
    repeating = _repeating_decimal(s)
    if repeating is not None:
        return f"{repeating.numerator}/{repeating.denominator}" if repeating.denominator > 1 else str(repeating)
    working = _WORKING.fullmatch(s)
    if working and _working_agrees(working.group("n"), working.group("w")):
        s = working.group("n")
    quantity = read_quantity(s)
    if quantity is not None and _unit_words_end(s, quantity.end) >= len(s.rstrip(" .,;:")) and not _changed_after(
            s, quantity.end):
        return quantity.latex()
    return s


def _working_agrees(number: str, working: str) -> bool:
    """Whether every side of the bracketed working ("18 + 12", "= 18 + 12", "18 + 12 = 30") is `number`:
    "5 (2)" or "3 (4 + 5)" is not 5 or 3 with its working, so it is no answer."""
    value = to_fraction(number)
    sides = [side for side in working.replace("×", "*").replace("÷", "/").replace(_MINUS, "-").split("=")]
    if value is None or not any(side.strip() for side in sides):
        return False
    return all(_arithmetic(side) == value for side in sides if side.strip() or len(sides) == 1)


def _arithmetic(expr: str) -> Fraction | None:
    """The exact value of + - * / arithmetic on decimals (no powers, so nothing can be huge), else None."""
    import ast

    expr = expr.replace(",", "")
    if len(expr) > _MAX_NUMBER_CHARS or "**" in expr or "//" in expr:
        return None
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div):
                return a / b
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        raise ValueError("not arithmetic")

    try:
        return value(tree)
    except (ValueError, ZeroDivisionError):
        return None


def clock_time(answer: str | None) -> tuple[int, int, int, bool] | None:
    """(hour, minute, second, whether the hour is on the 24-hour clock) for a time of day such as `1:15`,
    `1:15 pm`, `13:05`, `1:15:30`. The hour is a 24-hour one when am/pm says so or it is 0 or over 12."""
    if answer is None:
        return None
    s = _TEXT_WRAPPER.sub(r" \1 ", _clean(answer) or "").replace("\\,", " ").replace("\\ ", " ").strip()
    m = _CLOCK.fullmatch(s)
    if not m or int(m.group("h")) > 23:
        return None
    hour, ampm = int(m.group("h")), (m.group("ampm") or "").lower()
    if ampm:
        if hour > 12 or hour == 0:
            return None
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    return hour, int(m.group("m")), int(m.group("s") or 0), bool(ampm) or hour == 0 or hour > 12


def option_letter(answer: str | None) -> str | None:
    """The letter of a multiple-choice answer: `(C)`, `C`, `\\text{(C)}`, "(C) 12"."""
    if answer is None:
        return None
    option = _option(_TEXT_WRAPPER.sub(r"\1", _clean(answer) or "").strip())
    return option[0] if option else None


_TEMPERATURE_SCALE = re.compile(
    r"(?:°|\\degree\b|\\textdegree\b|\^\s*\{?\s*\\circ\s*\}?)\s*(?:\\(?:text|mathrm)\s*\{\s*)?([CFK])\b"
    r"|\bdegrees?\s+(celsius|centigrade|fahrenheit|kelvin|[CFK]\b)",
    re.IGNORECASE,
)


def temperature_scale(answer: str | None) -> str | None:
    """`C`, `F` or `K` when the answer names a temperature scale (`5 °C`, "5 degrees Fahrenheit"), else None."""
    m = _TEMPERATURE_SCALE.search(answer or "")
    if not m:
        return None
    return (m.group(1) or m.group(2))[0].upper()


def option_value(answer: str | None) -> str | None:
    """The value given with an option letter ("(C) 12" gives `12`), or None when there is none."""
    option = _option(_TEXT_WRAPPER.sub(r"\1", _clean(answer or "") or "").strip())
    return option[1] if option else None


def option_letters(answer: str | None) -> frozenset[str] | None:
    """The letters of an answer that lists several options (`\\text{(A), (C)}`, "A and C"), else None."""
    s = _TEXT_WRAPPER.sub(r"\1", _clean(answer or "") or "").strip()
    if not _OPTION_SET.fullmatch(s):
        return None
    return frozenset(re.findall(r"[A-E]", s))


def _option(s: str) -> tuple[str, str] | None:
    """(letter, value or "") of one multiple-choice option, or None when `s` is not exactly one."""
    m = _OPTION.fullmatch(s.strip())
    if not m:
        return None
    if m.group("bare"):
        return m.group("bare"), ""
    value = "" if m.group("value").strip() == "}" else m.group("value").strip()
    if value and _NOT_OPTION_VALUE.search(value):
        return None
    return m.group("letter"), value


def _repeating_decimal(s: str) -> Fraction | None:
    """`0.8\\overline{3}` (5/6), `0.\\overline{142857}`, `0.333...`: the exact value a repeating decimal writes."""
    m = _REPEATING.fullmatch(s.strip()) if len(s) <= _MAX_NUMBER_CHARS else None
    if not m:
        return None
    if m.group("rep") is not None:
        sign, whole, fixed, rep = m.group("sign"), m.group("int"), m.group("fixed"), m.group("rep")
    else:
        sign, whole, digits = m.group("sign2"), m.group("int2"), m.group("digits")
        period = next((p for p in range(1, 7) if len(digits) >= 2 * p + (p == 1)
                       and digits[-p:] * (2 + (p == 1)) == digits[-p * (2 + (p == 1)):]), None)
        if period is None:
            return None  # "0.83..." is an approximation, not a repetition
        fixed = digits[: -period * (2 + (period == 1))]
        while fixed.endswith(digits[-period:]):
            fixed = fixed[:-period]
        rep = digits[-period:]
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed)) + Fraction(
        int(rep), 10 ** len(fixed) * (10 ** len(rep) - 1))
    return -value if sign else value


def _unit_words_end(text: str, pos: int) -> int:
    """Where the unit words after a quantity end ("hours", `\\text{ cm}`); words that change it stop them."""
    count = 0
    while True:
        m = _UNIT_WORD.match(text, pos)
        if not m:
            return pos
        words = (m.group(1) or m.group(2)).lower().replace(".", " ").split()
        count += len(words)
        if any(w in _NOT_UNIT_WORDS or w in _MATH_WORDS or w in _CLAUSE_WORDS for w in words) or (
                count > _MAX_UNIT_WORDS):
            return pos
        pos = m.end()


# Units of measure that compound ("3 hours and 30 minutes", "5 feet 2 inches"): a number after them adds to it.
_COMPOUND_UNITS = frozenset(
    "hour hours hr hrs minute minutes min mins second seconds sec secs day days week weeks month months year years "
    "foot feet ft inch inches in yard yards mile miles meter meters metre metres cm mm km gram grams kg pound pounds "
    "lb lbs ounce ounces oz dollar dollars cent cents euro euros pence pint pints quart quarts gallon gallons "
    "cup cups liter liters litre litres ml".split()
)
_APPROXIMATELY = re.compile(r"\s+(?:about|approximately|roughly|around|nearly|≈)\s+")


def _changed_after(text: str, pos: int, value: Fraction | None = None) -> bool:
    """Whether what follows the number ending at `pos` changes it, bounds it or adds to it: an operation
    ("5 times 6", "5 ± 1"), a range ("5 to 6"), a fraction word ("2 thirds"), another number after its
    unit words ("3 hours and 30 minutes", "five twenty"), or a clause that is not a unit ("5 is wrong").
    Unit words, punctuation, the end and clause words ("because", "which") leave it as it is."""
    words: list[str] = []
    while True:
        m = _TAIL_TOKEN.match(text, pos)
        if not m:
            return False
        if m.group(1) or (m.group(3) and (not words or words[-1] in _COMPOUND_UNITS)):
            return True  # "5 ± 1", "1 hour 30 minutes"
        if m.group(3):
            return False  # "12 red marbles 3": words between, a new clause
        word = m.group(2).lower()
        if word in _CLAUSE_WORDS:
            return False
        if word in ("and", "or"):
            approx = _APPROXIMATELY.match(text, m.end()) if word == "or" else None
            if approx and value:  # "2/3 or about 0.667": the same value, approximated (within 1 %)
                other = read_quantity(text, approx.end())
                return other is None or abs(other.value - value) > abs(value) / 100
            after = _TAIL_TOKEN.match(text, m.end())
            # "2 and 3 quarters", "3 hours and 30 minutes", "5 or maybe 6", "5 apples or 6 pears"; "7 apples
            # and 3 oranges" is a clause
            return bool(after and (after.group(1) or (after.group(3) and (
                word == "or" or not words or words[-1] in _COMPOUND_UNITS))
                                   or (after.group(2) and after.group(2).lower() in _NOT_UNIT_WORDS)))
        if word in _NOT_UNIT_WORDS or word in _MATH_WORDS:
            return True
        words.append(word)
        if len(words) > _MAX_UNIT_WORDS:
            return True
        pos = m.end()


# --- helpers --------------------------------------------------------------------------------------------


_LEADING_BOX = re.compile(r"(?:\$\$?|\\\[|\\\()?\s*\\(?:boxed|fbox)\b")
_BARE_TOKEN = re.compile(r"[^\s$]+")


# A box that an operation continues ("\\boxed{5}^2 = 25", "\\boxed{5} \\times 2") holds a step, not the answer.
_OPERATED = re.compile(r"\$?[ \t]*(?:\^(?!\s*\{?\s*\\circ)|[_*/×·]|\\times\b|\\cdot\b|\\div\b|[-+][ \t]*\d)")
_OR_BETWEEN = re.compile(r"(?:[\s,;$]|\\[()\[\]])*or(?:[\s,;$]|\\[()\[\]])*")


def _differ(a: str, b: str) -> bool:
    """Whether two boxed answers are different numbers (not two forms of one value); unknown: False."""
    x, y = to_fraction(read_answer(a)), to_fraction(read_answer(b))
    return x is not None and y is not None and x != y


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _group_after(text: str, pos: int, braces: dict[int, int] | None = None) -> str | None:
    """The brace group starting at `pos` (after optional spaces), or the bare token `\\boxed 5` takes."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] != "{":
        token = _BARE_TOKEN.match(text, pos, pos + _MAX_REST)
        return token.group(0) if token else None
    end = braces.get(pos) if braces is not None else _brace_end(text, pos)
    return None if end is None else text[pos + 1 : end]  # None: unbalanced, the output was cut off in the box


def _phrase_answer(rest: str) -> str | None:
    """The answer part of the text after "the answer is": a math span, a box, or up to the sentence end."""
    rest = rest.strip().strip("*").strip()
    # Only a box the phrase starts with is its answer: a later one ("6, not \\boxed{5}") is a marker of its
    # own, judged in its own context.
    box = _LEADING_BOX.match(rest)
    boxed = _group_after(rest, box.end()) if box else None
    if boxed and boxed.strip():
        return boxed.strip()
    for opener, closer in _MATH_SPANS:
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if opener == "$" and re.match(r"\d", rest[end + 1 : end + 2]):
                break  # "$18 and $7 left": dollar amounts, not a math span
            if end > len(opener):
                joined, after = _joined_spans(rest, opener, closer, end), end + len(closer)
                if joined == _clean(rest[len(opener) : end]) and (
                        _ALTERNATIVE.match(rest, after, after + _CONTEXT) or _changed_after(rest, after)):
                    stop = _SENTENCE_END.search(rest, after)
                    return _clean(rest[: stop.start()] if stop else rest)  # "$5$ (or $6$)", "$5$ if ...": not 5
                return joined
    end = _SENTENCE_END.search(rest)
    sentence = _clean(rest[: end.start()] if end else rest)
    if sentence is None or to_fraction(sentence) is not None:
        return sentence  # one quantity, units allowed: "1,000 dollars"
    answer = _clean(_quantity_phrase(sentence) or _leading_expression(sentence)) or sentence
    at = sentence.find(answer)
    if at >= 0 and _ALTERNATIVE.match(sentence, at + len(answer)):
        return sentence  # "5 (or 6)", "5 — or 6", "5 in the first case and 6 in the second": a hedge
    return answer


def _quantity_phrase(sentence: str) -> str | None:
    """The quantity a sentence starts with, read whole ("3 and a half hours", "7 dollars and 25 cents"),
    when what follows it ends the answer: the sentence's end, a bracket, or a new clause. A list ("3, 4")
    or a hedge ("3 or 4") is left to `_leading_expression`, which keeps them whole."""
    if _QUALIFIER.match(sentence):
        return None
    lead = _LEAD_IN.match(sentence)
    start = lead.end() if lead else 0
    clock = _CLOCK.match(sentence, start)
    if clock and (_LIST_GOES_ON.match(sentence, clock.end()) or _ALTERNATIVE.match(sentence, clock.end())):
        return sentence  # "2:30, 3:30", "2:30 PM or 3:30 PM": several times, not the answer
    if clock and _ANSWER_ENDS.match(sentence, clock.end()):
        return sentence[start : clock.end()]  # "2:30 PM": a time, read with its am/pm
    quantity = read_quantity(sentence, start)
    if quantity is None:
        return None
    if _changed_after(sentence, quantity.end, quantity.value):
        return sentence  # "5 times 6", "3 hours and 30 minutes": not the number alone, so not an answer
    end = _unit_words_end(sentence, quantity.end)
    working = _WORKING_AFTER.match(sentence, quantity.end)
    if working:
        return sentence[start : working.end()]  # "30 (18 + 12)": read_answer checks that the working agrees
    if not _ANSWER_ENDS.match(sentence, end) or _LIST_GOES_ON.match(sentence, end):
        return None
    return sentence[start:end]


def _joined_spans(rest: str, opener: str, closer: str, end: int) -> str | None:
    """The first math span of `rest`, with the spans that "or" / "and" / a comma join to it.

    "$x = 2$ or $x = 3$" is a hedge, not the answer `x = 2`: it comes back as `x = 2 \\text{ or } x = 3`,
    which equals neither value alone; "$2$ and $3$" becomes `2 \\text{ and } 3`.
    """
    parts = [rest[len(opener) : end]]
    pos = end + len(closer)
    joiners = re.compile(r"\s*(,\s*(?:or|and)\b|,|or\b|and\b)\s*" + re.escape(opener))
    while True:
        joiner = joiners.match(rest, pos)
        if not joiner:
            break
        start = joiner.end()
        close = rest.find(closer, start)
        if close <= start:
            break
        word = joiner.group(1).strip(", ")
        if joiner.group(1).startswith(",") and word == "and" and len(parts) == 1 and _PROSE_AFTER.match(
                rest, close + len(closer)):
            break  # "$12$, and $5$ cookies are left": "and" begins a new clause, not a list
        parts.append(f" \\text{{ {word} }} " if word else ", ")
        parts.append(rest[start:close])
        pos = close + len(closer)
    if len(parts) == 1:
        return _clean(parts[0])
    return _clean("".join(p if i % 2 else p.strip() for i, p in enumerate(parts)))


def _leading_expression(text: str) -> str:
    """The number or expression `text` starts with, up to the first plain word that is not math.

    "3 apples, and 7 oranges were left" gives "3"; "x = 5 because ..." gives "x = 5"; "12 (twelve)" gives
    "12"; a list stays whole: "19, 46, and 82". Single letters are variables, LaTeX commands and brace
    groups are kept whole, and a few lead-in words ("approximately", "therefore") are skipped.
    Returns "" when the text does not start with math (e.g. "Evelyn"): the caller then keeps it all.
    """
    if _QUALIFIER.match(text):
        return text.strip()  # "at least 3": not the number alone
    lead = _LEAD_IN.match(text)
    start = lead.end() if lead else 0
    i, n = start, len(text)
    openers: list[int] = []  # positions of unclosed ( and [
    joiner: int | None = None  # where an "and N" began: a list's last item, or a new clause if words follow
    while i < n:
        ch = text[i]
        if ch == "\\":
            command = re.match(r"\\(?:[A-Za-z]+|.)", text[i:])
            i += len(command.group(0))
            continue
        if ch == "{":
            end = _brace_end(text, i)
            if end is None:
                break
            i = end + 1
            continue
        if ch.isalpha():
            word = re.match(r"[^\W\d_]+", text[i:]).group(0)
            lower = word.lower()
            if len(word) == 1 and re.match(r"\.[^\W\d_]", text[i + 1 : i + 3]):
                break  # "i.e.", "e.g.": prose
            if _QUALIFIER.match(text, i):
                return text.strip()  # "3 or more", "5 at most": not the number alone
            if lower in _MATH_WORDS or (len(word) == 1 and not _PROSE_AFTER.match(text, i + 1)):
                i += len(word)
                continue
            if lower in _SCALING_WORDS:
                i += len(word)  # "2 hundred" stays whole: it is not 2
                break
            if lower in ("and", "or") and _LIST_ITEM.match(text, i + len(word)):
                comma = re.search(r",\s*$", text[start:i])
                if joiner is None and lower == "and":
                    joiner = start + comma.start() if comma else i
                i += len(word)
                continue
            if joiner is not None:
                i = joiner  # "3, and 7 oranges were left": words follow, so "and" began a new clause
            elif not openers and _changed_after(text, i, to_fraction(text[start:i])):
                return text.strip()  # "5 factorial", "1 hour 30 minutes", "5 is wrong": not the number alone
            break  # "3 or 4 apples" stays "3 or 4": a hedge
        if ch in "([":
            openers.append(i)
        elif ch in ")]":
            if not openers:
                break
            openers.pop()
        elif ch in "±∓&→⇒~≈≠≤≥":
            return text.strip()  # "5 ± 1", "5 & 6", "5 → 6": not 5
        elif not (ch.isdigit() or ch.isspace() or ch in _MATH_CHARS):
            break
        i += 1
    if openers and openers[0] < i:
        i = openers[0]  # "12 (twelve)": drop the bracket a word interrupted
    return text[start:i].strip().rstrip(",;:=").strip()


_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)


def _brace_map(text: str) -> dict[int, int]:
    """Every balanced `{` of `text` and the `}` closing it, in one pass (a scan per box is quadratic)."""
    pairs, stack = {}, []
    for m in _BRACE_OR_ESCAPE.finditer(text):  # an escaped brace (\{ \}) is a literal, not a delimiter
        if m.group() == "{":
            stack.append(m.start())
        elif m.group() == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _brace_end(text: str, pos: int) -> int | None:
    """Index of the brace closing the one at `pos`, or None when it is never closed."""
    depth, i = 0, pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped brace (\{ \}) is a literal, not a group delimiter
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _clean(answer: str) -> str | None:
    answer = _unwrap_span(answer.strip().strip("*").strip())
    if _ELLIPSIS_END.search(answer):
        return answer  # "0.333...": the dots say the digits repeat
    answer = answer.rstrip(" .,;:!")
    return answer or None


def _unwrap_span(answer: str) -> str:
    """A lone math span around the whole answer ("$18$") carries no meaning."""
    for opener, closer in _MATH_SPANS:
        if answer.startswith(opener) and answer.endswith(closer) and len(answer) > len(opener) + len(closer):
            return answer[len(opener) : -len(closer)].strip()
    return answer


def _normalise_number_text(answer: str) -> str:
    s = answer.strip().replace(_MINUS, "-")
    s = _TEXT_WRAPPER.sub(r" \1 ", s)
    for noise in ("\\!", "\\,", "\\;", "\\ ", "{,}", "\\left", "\\right", "\\$", "$", "\\%", "%", "°"):
        s = s.replace(noise, "," if noise == "{,}" else "")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.strip().rstrip(".").strip()
    if s.startswith("(") and s.endswith(")") and "," not in s:
        s = s[1:-1].strip()  # "(5)" is 5; "(1,2)" stays a tuple
    unit = _UNIT_TAIL.fullmatch(s)
    if unit:
        words = s[unit.end(1) :].lower().replace(".", " ").split()
        if (_NOT_UNIT_WORDS | _MATH_WORDS) & set(words) or len(words) > _MAX_UNIT_WORDS:
            return ""  # "2 hundred", "3 or more", "5 is wrong": not the number alone
        s = unit.group(1)
    # Spaces only go where they cannot join two numbers into one ("5 6" must not become 56).
    s = re.sub(r"\s*([/{}])\s*", r"\1", s)
    s = re.sub(r"^([-+])\s+", r"\1", s)
    s = re.sub(r"frac\s+\{", "frac{", s)
    if s.startswith("+"):
        s = s[1:]
    return s


def _fraction_part(part: str) -> Fraction | None:
    return Fraction(part) if re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)", part) else None
