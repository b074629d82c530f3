"""Shared test setup: where the benchmark data lives, and an isolated cache per test session."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TL_EVAL_DATA_DIR", str(REPO.parent / "shared" / "data"))
DATA_DIR = Path(os.environ["TL_EVAL_DATA_DIR"])


@pytest.fixture
def data_dir() -> Path:
    if not (DATA_DIR / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"benchmark data not found in {DATA_DIR} (set TL_EVAL_DATA_DIR)")
    return DATA_DIR
