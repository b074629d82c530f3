"""Sandbox tiers: how each one launches a worker, what its start-up probe must show, and the order of fallback."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ...errors import SandboxUnavailable
from .confine import NPROC_WITHOUT_CGROUP

TIERS = ("bwrap", "unshare", "seccomp", "none")
AUTO_ORDER = ("bwrap", "unshare", "seccomp")
TIER_ENV = "TL_EVAL_SANDBOX_TIER"
ALLOW_ENV = "TL_EVAL_ALLOW_UNSANDBOXED"
# CAP_SYS_ADMIN: the zygote makes a PID namespace per job and each child a mount namespace and tmpfs of its own;
# the worker drops it once the zygote is forked, and a child loses every capability when it changes uid.
BWRAP_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SYS_ADMIN")
# Tiers where every job gets a PID namespace, a mount namespace and a tmpfs of its own: nothing one job can set
# is observable by the next (docs/sandbox.md, "Threat model").
FRESH_TIERS = ("bwrap", "unshare")


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
    """The folder that holds `harness/`: the worker imports its sandbox package as top-level `harness.verify.sandbox`
    (relative imports inside), so that the few files mounted for it need no `tl_eval` namespace around them."""
    return str(Path(__file__).resolve().parents[3])


def interpreter() -> str:
    """The real interpreter behind sys.executable: a virtualenv (or a symlinked folder on the way to it) is not
    what the sandbox runs, so neither its site-packages nor an unresolvable link path reach the worker."""
    return os.path.realpath(sys.executable)


# Inside bwrap the worker's own modules are mounted here, and nothing else of the package.
BWRAP_PKG = "/opt/tl-eval"
# The job root: in bwrap a size-limited tmpfs; in the other tiers a host directory made (and removed) per worker.
BWRAP_JOBS = "/tmp/jobs"


def sandbox_sources() -> list[str]:
    """The files the worker imports from tl-eval: the sandbox package and the two package markers above it."""
    sandbox = Path(__file__).resolve().parent
    return [str(sandbox.parent.parent / "__init__.py"), str(sandbox.parent / "__init__.py"), str(sandbox)]


def worker_env(tier: str = "bwrap") -> dict[str, str]:
    """A clean environment: the host's variables (secrets included) never reach a worker or its children."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "PYTHONPATH": BWRAP_PKG if tier == "bwrap" else _package_root(),
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LD_BIND_NOW": "1"}


def _site_dirs(prefix: str) -> list[str]:
    import sysconfig

    paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
    return sorted({paths["purelib"], paths["platlib"]})


def _bind_tree(path: str) -> list[str]:
    """Read-only bind of `path`, with the directories above it made traversable (bwrap creates them 0700)."""
    argv = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        argv += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
    return argv + ["--ro-bind", path, path]


def bwrap_prefix(disk_mb: int = 64, cgroup: bool = False) -> list[str]:
    """An allowlisted file system: /usr (and the merged-/usr links), the real Python installation without its
    site-packages, a few /etc files, the sandbox's own sources, /dev, /proc and a size-limited /tmp. Nothing else
    of the host: no /home, /root, /work, /var, no checkout, data directory, hub cache or run directory."""
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    prefix = str(Path(sys.base_prefix).resolve())
    exe_dir = os.path.dirname(interpreter())
    for tree in sorted({prefix, str(Path(exe_dir).parent)}):
        if not tree.startswith("/usr/") and tree != "/usr":
            argv += _bind_tree(tree)
    hidden = _site_dirs(prefix) + ["/usr/lib/python3/dist-packages",
                                    f"/usr/local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/dist-packages",
                                    f"/usr/local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"]
    for site in sorted(set(hidden)):
        if os.path.isdir(site):
            argv += ["--tmpfs", site]  # an empty directory over it: installed packages carry benchmark data
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"):
        if os.path.exists(f):
            argv += ["--ro-bind", f, f]
    for src in sandbox_sources():
        rel = Path(src).relative_to(Path(_package_root()))
        argv += ["--ro-bind", src, str(Path(BWRAP_PKG) / rel)]
    argv += ["--dev", "/dev", "--proc", "/proc", "--size", str(disk_mb * 1024 * 1024), "--tmpfs", "/tmp",
             "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    if not cgroup:
        # (with a memory cgroup the children move into a sibling of the worker's cgroup, outside a new namespace)
        argv += ["--unshare-cgroup-try"]
    argv += ["--die-with-parent", "--new-session", "--chdir", "/", "--clearenv"]
    for k, v in worker_env("bwrap").items():
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


def worker_argv(tier: str, uid: int | None, jobs_root: str = BWRAP_JOBS, disk_mb: int = 64,
                cgroup_fds: tuple[int, int] | None = None) -> list[str]:
    """The command that starts one worker; `jobs_root` is the host directory for the non-bwrap tiers and
    `cgroup_fds` the inherited (job cgroup.procs, OOM counter) descriptors when a memory cgroup is in use."""
    root = os.geteuid() == 0
    config = {"tier": tier, "uid": uid if (root and tier != "none") else None,
              "landlock": tier != "none", "seccomp": tier != "none", "pidns": tier in ("bwrap", "unshare"),
              "fresh": tier in FRESH_TIERS,
              "jobs_root": BWRAP_JOBS if tier == "bwrap" else jobs_root, "disk_mb": disk_mb}
    if cgroup_fds is not None:
        config["cgroup_fd"], config["oom_fd"] = cgroup_fds
    cmd = [interpreter(), "-s", "-S", "-B", "-m", "harness.verify.sandbox.worker", json.dumps(config)]
    if tier == "bwrap":
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed", "apt-get install bubblewrap")
        return bwrap_prefix(disk_mb, cgroup_fds is not None) + cmd
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
    if tier in FRESH_TIERS and (not hello.get("fresh_namespaces") or child.get("pid") != 1):
        problems.append("the job is not the first process of a PID namespace of its own")
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
    out += [f"sandbox isolation: {gap}" for gap in isolation_gaps(tier, hello)]
    return out


def isolation(tier: str, hello: dict) -> dict:
    """What this worker's probe shows the tier gives, promise by promise (for config.json and the summary)."""
    child = hello.get("child", {})
    return {"tier": tier, "answer_key_unreachable_in_memory": bool(hello.get("zygote")),
            "filesystem_allowlist": bool(child.get("fs_allowlist")), "private_uid": hello.get("uid") is not None,
            "memory_limit": "job cgroup" if hello.get("memory_cgroup") else "per process",
            "job_dir_size_limit": bool(hello.get("disk_limit")), "namespaces": tier in ("bwrap", "unshare"),
            "jobs_independent": bool(hello.get("fresh_namespaces")) and child.get("pid") == 1,
            "proc_hidden": bool(child.get("proc_hidden"))}


def isolation_gaps(tier: str, hello: dict) -> list[str]:
    """Plain-language list of the promises this tier does not keep here."""
    if tier == "none":
        return ["none (tier 'none')"]
    iso, gaps = isolation(tier, hello), []
    if not iso["filesystem_allowlist"]:
        gaps.append("no file-system allowlist: candidates can read host files, benchmark answer keys included")
    if iso["memory_limit"] != "job cgroup":
        gaps.append(f"no memory cgroup: memory is limited per process (up to {NPROC_WITHOUT_CGROUP} processes of "
                    "memory_mb each)")
    if not iso["job_dir_size_limit"]:
        gaps.append("the job directory has no size limit (only the per-file limit)")
    if not iso["jobs_independent"]:
        gaps.append("no namespaces per job: a job can pass information to later jobs through host pid numbers and "
                    "the job directory's inode numbers, so verdicts may depend on what ran before")
    return gaps
