"""Read the small JSON files kws-kd writes (run config, store meta, sidecar, dataset meta).

One reader so every one of them fails the same way: a one-line `KwsKdError`
naming the file, whether it is missing, not JSON, or not a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

from kws_kd.errors import KwsKdError


def read_json_object(path: str | Path, missing: str) -> dict:
    """Parse `path` as a JSON object; `missing` says what the absence means (e.g. "not a teacher store")."""
    path = Path(path)
    if not path.is_file():
        raise KwsKdError(f"{path}: missing; {missing}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KwsKdError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise KwsKdError(f"{path}: expected a JSON object")
    return data
