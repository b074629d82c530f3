"""What a code task hands to the sandbox: an untrusted program and trusted tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CodeTest:
    """A trusted test snippet that calls `entry_point` by name, e.g. `assert add(1, 2) == 3` or `check(add)`."""

    name: str
    code: str


@dataclass(frozen=True)
class CodeJob:
    """One program to judge against its tests.

    `context` is trusted source the tests run in (imports, helper functions the tests use, e.g. the
    reference program). Tests and context run in the sandbox's trusted worker; the untrusted `solution`
    runs alone in a child and only answers calls to `entry_point` with plain data.
    """

    solution: str  # untrusted: the extracted program
    entry_point: str
    tests: tuple[CodeTest, ...]
    context: str = ""
    time_limit_s: float | None = None  # per test; None: the verifier's default
    job_id: str = ""
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
