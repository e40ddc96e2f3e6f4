"""The one lookup of the shared Speech Commands subset (kws_kd.data.shared)."""

from __future__ import annotations

import pytest

from kws_kd.data.shared import SC_SUBSET, find_shared_data, shared_data_dir
from kws_kd.errors import KwsKdError


def _subset(root):
    for word in ("yes", "_background_noise_"):
        (root / word).mkdir(parents=True)
    return root


def test_explicit_folder_holding_the_subset_or_being_it(tmp_path):
    inner = _subset(tmp_path / "data" / SC_SUBSET)
    assert find_shared_data(tmp_path / "data") == inner.resolve()
    assert find_shared_data(inner) == inner.resolve()
    with pytest.raises(KwsKdError, match=f"no Speech Commands folder \\(expected {SC_SUBSET}/"):
        find_shared_data(tmp_path / "empty")


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    inner = _subset(tmp_path / SC_SUBSET)
    monkeypatch.setenv("KWS_KD_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path and find_shared_data() == inner.resolve()
