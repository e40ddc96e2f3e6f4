"""docs/python_api.md's example runs as written, and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from _train_fixtures import make_store, make_tone_dataset

DOC = Path(__file__).resolve().parents[1] / "docs" / "python_api.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/python_api.md has no python example"
    return blocks[0]


def test_example_is_short():
    code = [line for line in _example().splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(code) < 40


def test_example_runs_as_written(tmp_path):
    manifest = make_tone_dataset(tmp_path / "data")
    make_store(tmp_path / "store", manifest)
    scope = {"DATA": tmp_path / "data", "STORE": tmp_path / "store", "OUT": tmp_path}
    exec(compile(_example(), str(DOC), "exec"), scope)  # noqa: S102 - the documented example itself

    history = scope["history"].history
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert all(v > 0 for v in history["kd"])  # the attention term was trained
    assert scope["logits"].shape == (8, 3)
    assert Path(scope["path"]).is_file() and Path(scope["path"]).with_suffix(".json").is_file()
    assert scope["tflite_logits"].shape == (8, 3)
    assert scope["agreement"] >= 0.75  # int8 LiteRT agrees with Keras on most clips
    np.testing.assert_allclose(scope["reloaded"](scope["audio"]).numpy(), scope["logits"], rtol=1e-4, atol=1e-4)
