"""Reading benchmark files from a data folder or the hub, with errors that name the file and the fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from harness.errors import DataError

OFFLINE_FIX = "pass --data-dir DIR containing {rel}, or set TL_EVAL_DATA_DIR, or go online"


def require_file(data_dir: Path, rel: str) -> Path:
    """`data_dir/rel`, or DataError naming the missing path."""
    path = Path(data_dir) / rel
    if not Path(data_dir).is_dir():
        raise DataError(f"data folder {data_dir} does not exist",
                        f"pass --data-dir DIR (or TL_EVAL_DATA_DIR) pointing at a folder containing {rel}")
    if not path.is_file():
        raise DataError(f"benchmark file {path} is missing",
                        f"put {rel} under {data_dir}, or point --data-dir / TL_EVAL_DATA_DIR at a folder that has it")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl or .jsonl.gz file; a malformed line is a DataError naming file:line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[dict[str, Any]] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: malformed JSON line ({exc.msg})",
                                    f"fix or remove line {lineno} of {path}") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}",
                                    f"make every line of {path} a JSON object")
                rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}", "check that the file is a readable UTF-8 JSONL file") from None
    return rows


def read_json_list(path: Path) -> list[dict[str, Any]]:
    """A JSON file holding a list of objects."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})", f"fix {path}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects", f"fix {path}")
    return data


def require_fields(row: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    """DataError naming the first field a row lacks."""
    for name in fields:
        if name not in row:
            raise DataError(f"{where}: missing field {name!r} (has: {', '.join(sorted(row))})",
                            "use a file in the benchmark's published schema")


def load_hub(name: str, config: str | None, split: str, rel: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset split through `datasets`; unreachable hub -> DataError with the offline fix."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise DataError(f"cannot load {name}: the `datasets` package is missing",
                        OFFLINE_FIX.format(rel=rel) + ", or pip install datasets") from None
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise DataError(f"{name} has no split {split!r}", "choose one of the dataset's splits") from None
        raise DataError(f"cannot load {name} ({config or 'default'}) from the hub: {exc}",
                        OFFLINE_FIX.format(rel=rel)) from None
    except Exception as exc:  # network, auth and cache errors all mean: not reachable from here
        raise DataError(f"cannot load {name} ({config or 'default'}, split {split}) from the hub: "
                        f"{type(exc).__name__}: {str(exc)[:200]}", OFFLINE_FIX.format(rel=rel)) from None
    return [dict(row) for row in ds]
