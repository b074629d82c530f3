"""Each tier, forced through TL_EVAL_SANDBOX_TIER, works as promised or refuses with a clear message."""

from __future__ import annotations

import pytest

from tl_eval.harness.errors import SandboxUnavailable
from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tests.conftest_sandbox import SENTINEL, job, sandbox_processes

WRONG = job("def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3", entry_point="add")
ESCAPE = job("import os, time\ndef f():\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(300)\n"
             "    return 1\n", "assert f() == 2")


@pytest.mark.parametrize("tier", ["bwrap", "unshare", "seccomp"])
def test_forced_tier_works(monkeypatch, tier):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
    monkeypatch.delenv("TL_EVAL_ALLOW_UNSANDBOXED", raising=False)
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        assert v.tier == tier
        child = v.probe["child"]
        assert child["uid"] != 0 and child["socket_blocked"] and child["cap_eff"] == "0000000000000000"
        assert v.probe["pidns"] == (tier != "seccomp")
        assert any("no namespaces" in w for w in v.warnings) == (tier == "seccomp")
        assert [r.status for r in v.verify([SENTINEL, WRONG, ESCAPE])] == ["pass", "fail", "fail"]
    assert sandbox_processes() == []


def test_none_refused_without_permission(monkeypatch):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "none")
    monkeypatch.delenv("TL_EVAL_ALLOW_UNSANDBOXED", raising=False)
    with pytest.raises(SandboxUnavailable) as e:
        CodeVerifier()
    assert "TL_EVAL_ALLOW_UNSANDBOXED" in str(e.value) and "--allow-unsandboxed" in str(e.value)


@pytest.mark.parametrize("how", ["env", "arg"])
def test_none_runs_when_allowed(monkeypatch, how):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "none")
    if how == "env":
        monkeypatch.setenv("TL_EVAL_ALLOW_UNSANDBOXED", "1")
    with CodeVerifier(SandboxLimits(workers=1), allow_unsandboxed=how == "arg") as v:
        assert v.tier == "none" and any("UNSANDBOXED" in w for w in v.warnings)
        assert [r.status for r in v.verify([SENTINEL, WRONG])] == ["pass", "fail"]


def test_unknown_tier(monkeypatch):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "docker")
    with pytest.raises(SandboxUnavailable, match="unknown sandbox tier"):
        CodeVerifier()


def test_missing_bwrap_falls_back_or_refuses(monkeypatch, tmp_path):
    # A PATH without bwrap and unshare: forcing bwrap refuses, auto falls back to the seccomp tier.
    import os
    monkeypatch.setattr("tl_eval.harness.verify.sandbox.tiers.shutil.which",
                        lambda name: None if name in ("bwrap", "unshare") else os.path.join("/usr/bin", name))
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "bwrap")
    with pytest.raises(SandboxUnavailable) as e:
        CodeVerifier()
    assert "apt-get install bubblewrap" in str(e.value)
    monkeypatch.delenv("TL_EVAL_SANDBOX_TIER")
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        assert v.tier == "seccomp"
        assert v.verify([SENTINEL])[0].status == "pass"


def test_no_tier_at_all_refuses(monkeypatch):
    from tl_eval.harness.verify.sandbox import tiers
    monkeypatch.delenv("TL_EVAL_SANDBOX_TIER", raising=False)
    monkeypatch.delenv("TL_EVAL_ALLOW_UNSANDBOXED", raising=False)
    monkeypatch.setattr(tiers, "worker_argv", lambda *a, **k: ["/bin/false"])  # every tier's worker dies at start
    with pytest.raises(SandboxUnavailable) as e:
        CodeVerifier()
    msg = str(e.value)
    assert "bwrap:" in msg and "unshare:" in msg and "seccomp:" in msg and "fix:" in msg


def test_sandbox_command_lists_the_promises_per_tier():
    from click.testing import CliRunner

    from tl_eval.harness.cli import main

    result = CliRunner().invoke(main, ["sandbox", "--tier", "bwrap,seccomp"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    assert set(rows) >= {"bwrap", "seccomp"}
    assert "NO" not in rows["bwrap"] and "NO" in rows["seccomp"]  # seccomp: no namespaces, no size limit
