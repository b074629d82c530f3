"""Sandbox tiers: how each one launches a worker, what its start-up probe must show, and the order of fallback."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import harness
from harness.errors import SandboxUnavailable

TIERS = ("bwrap", "unshare", "seccomp", "none")
AUTO_ORDER = ("bwrap", "unshare", "seccomp")
TIER_ENV = "TL_EVAL_SANDBOX_TIER"
ALLOW_ENV = "TL_EVAL_ALLOW_UNSANDBOXED"
BWRAP_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")


def requested_tier(tier: str) -> str:
    """The tier asked for: the env var wins over the argument; validated."""
    tier = os.environ.get(TIER_ENV) or tier
    if tier not in TIERS + ("auto",):
        raise SandboxUnavailable(f"unknown sandbox tier {tier!r}",
                                 f"use one of auto, {', '.join(TIERS)} (argument or {TIER_ENV})")
    return tier


def unsandboxed_allowed(flag: bool) -> bool:
    return flag or os.environ.get(ALLOW_ENV, "") not in ("", "0", "false", "no")


def _package_root() -> str:
    return str(Path(harness.__file__).resolve().parent.parent)


def worker_env() -> dict[str, str]:
    """A clean environment: the host's variables (secrets included) never reach a worker or its children."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": _package_root(),
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


def _hide(path: str) -> list[str]:
    """Replace `path` with an empty tmpfs, binding back only the Python installation and package under it.

    The binds also make those trees reachable for the child's uid when `path` itself is mode 700 (/root).
    """
    if not os.path.isdir(path):
        return []
    argv = ["--tmpfs", path]
    needed = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, _package_root())}
    for p in sorted(needed):
        if p.startswith(path + "/") and not any(p.startswith(q + "/") for q in needed):
            parts = Path(p).relative_to(path).parts
            for i in range(1, len(parts)):  # bwrap would create these 0700, unreachable for the child's uid
                argv += ["--perms", "0755", "--dir", str(Path(path, *parts[:i]))]
            argv += ["--ro-bind", p, p]
    return argv


def bwrap_prefix() -> list[str]:
    # Order matters: the root bind first, then what it must not show, then --proc (after the root binds).
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev"]
    # Hidden behind empty tmpfs mounts; the Python install and tl-eval stay visible even when they live there
    # (a checkout or virtualenv under /tmp, a pyenv under /root).
    for p in ("/tmp", "/var/tmp", "/run", "/dev/shm", "/root", "/home"):
        argv += _hide(p)
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if os.path.exists(secret):
            argv += ["--ro-bind", "/dev/null", secret]
    argv += ["--proc", "/proc", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/tmp", "--clearenv"]
    for k, v in worker_env().items():
        argv += ["--setenv", k, v]
    # bwrap run as root keeps every capability unless told otherwise: drop all, add back what the worker needs
    # (the child loses these too when it changes uid).
    argv += ["--cap-drop", "ALL"]
    for cap in BWRAP_CAPS:
        argv += ["--cap-add", cap]
    return argv + ["--"]


def unshare_prefix() -> list[str]:
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts"]
    if os.geteuid() != 0:
        argv.insert(1, "--map-root-user")
    return argv + ["--"]


def worker_argv(tier: str, uid: int | None) -> list[str]:
    root = os.geteuid() == 0
    config = {"tier": tier, "uid": uid if (root and tier != "none") else None,
              "landlock": tier != "none", "seccomp": tier != "none", "pidns": tier in ("bwrap", "unshare")}
    cmd = [sys.executable, "-s", "-B", "-m", "harness.verify.sandbox.worker", json.dumps(config)]
    if tier == "bwrap":
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed", "apt-get install bubblewrap")
        return bwrap_prefix() + cmd
    if tier == "unshare":
        if shutil.which("unshare") is None:
            raise SandboxUnavailable("unshare (util-linux) is not installed", "apt-get install util-linux")
        return unshare_prefix() + cmd
    return cmd


def check_probe(tier: str, hello: dict) -> list[str]:
    """Problems with a worker's start-up report for this tier; empty means the tier works as promised."""
    if "error" in hello:
        return [hello["error"]]
    if tier == "none":
        return []
    problems = []
    child = hello.get("child", {})
    if tier in ("bwrap", "unshare") and hello.get("pid", 99) > 2:
        problems.append("worker is not alone in a PID namespace")
    if os.geteuid() == 0 and child.get("uid") == 0:
        problems.append("child still runs as root")
    if not child.get("socket_blocked"):
        problems.append("child can open an internet socket")
    if int(child.get("cap_eff", "1"), 16) != 0:
        problems.append(f"child keeps capabilities {child.get('cap_eff')}")
    if tier == "seccomp" and not hello.get("seccomp"):
        problems.append("seccomp filter unavailable")
    return problems


def warnings_for(tier: str, hello: dict) -> list[str]:
    out = []
    if tier == "seccomp":
        out.append("sandbox tier 'seccomp': no namespaces; relying on seccomp, Landlock, rlimits and a private uid"
                   " (install bubblewrap for full isolation)")
    if tier == "none":
        out.append("sandbox tier 'none': model-written code runs UNSANDBOXED with only rlimits and a deadline")
    if tier != "none" and not hello.get("landlock"):
        out.append("Landlock unavailable: writes outside the temp dir are limited by file permissions only")
    if tier != "none" and not hello.get("child", {}).get("stdlib_readable", True):
        out.append("the Python installation is not readable by the sandbox uid (is it under /root?): candidates"
                   " can import only the modules the worker preloads; use the bwrap tier or a world-readable Python")
    if tier != "none" and hello.get("uid") is None:
        out.append("not running as root: children cannot drop to a private uid")
    return out
