"""Where the shared real Speech Commands subset lives: the one lookup every part uses (numpy-free).

The subset (`speech_commands_v0.02_test_subset/`, cut from the official test
archive) sits in a `shared/data/` folder beside the repository; `$KWS_KD_SHARED_DATA`
names another folder holding it.
"""

from __future__ import annotations

import os
from pathlib import Path

from kws_kd.errors import KwsKdError

SC_SUBSET = "speech_commands_v0.02_test_subset"
ENV_VAR = "KWS_KD_SHARED_DATA"


def shared_data_dir() -> Path:
    """`$KWS_KD_SHARED_DATA`, else `<repository>/../shared/data` (it may not exist)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def find_shared_data(explicit: str | os.PathLike | None = None) -> Path | None:
    """The shared Speech Commands subset folder: `explicit`, `$KWS_KD_SHARED_DATA`, or ../shared/data.

    Each candidate may be the subset itself or a folder holding `SC_SUBSET/`.
    An `explicit` folder is the only one looked at: when it holds no subset
    that is a KwsKdError (never a silent fall-back). None when none is found.
    """
    candidates = [Path(explicit)] if explicit else [shared_data_dir(), Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        for path in (c / SC_SUBSET, c):
            if (path / "_background_noise_").is_dir() and (path / "yes").is_dir():
                return path.resolve()
    if explicit:
        raise KwsKdError(f"{explicit}: no Speech Commands folder (expected {SC_SUBSET}/ or yes/, _background_noise_/)")
    return None
