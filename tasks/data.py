"""Reading benchmark files from a data folder or the hub, with errors that name the file and the fix."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from tl_eval.harness.errors import DataError
from tl_eval.harness.jsonl import read_jsonl  # noqa: F401  (re-exported for the adapters)

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


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the dataset hub answers a TCP connect; `datasets` itself retries for ~25 s before giving up."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host.split(":")[0], int(host.split(":")[1]) if ":" in host else 443),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _offline():
    """Offline mode for one call: the libraries read their env vars at import, so set their flags instead."""
    import datasets.config
    import huggingface_hub.constants

    saved = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def load_hub(name: str, config: str | None, split: str, rel: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset split through `datasets`; unreachable hub -> DataError with the offline fix."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise DataError(f"cannot load {name}: the `datasets` package is missing",
                        OFFLINE_FIX.format(rel=rel) + ", or pip install datasets") from None
    try:
        if _hub_reachable():
            ds = datasets.load_dataset(name, config, split=split)
        else:
            # Offline: use the local datasets cache if it has the set, and fail at once instead of retrying.
            with _offline():
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
