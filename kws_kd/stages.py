"""Cached, hash-keyed pipeline stages (what makes `kws-kd demo` resumable).

A stage is a named step with JSON-serialisable parameters and upstream stages.
Its key hashes its name, its parameters and its upstream keys, so changing an
option (or anything upstream) reruns exactly the stages that depend on it.
A stage lives in `<root>/<name>-<key12>/`. It is finished when its `stage.json`
marker exists; the marker is written atomically and last, so a killed run never
leaves a stage that looks finished but is not. An unfinished folder is kept and
handed to the builder again, so long stages (training) resume where they stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kws_kd.atomic import atomic_write_text

MARKER = "stage.json"


@dataclass
class StageResult:
    name: str
    key: str
    path: Path
    summary: dict = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0


def stage_key(name: str, params: dict[str, Any], upstream: list[StageResult]) -> str:
    blob = json.dumps(
        {"name": name, "params": params, "upstream": [u.key for u in upstream]}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class StageRunner:
    """Runs stages under one root folder, reusing any stage whose key already finished."""

    def __init__(self, root: str | Path, log: Callable[[str], None] = print):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.results: list[StageResult] = []
        self._seen: dict[str, StageResult] = {}  # key -> result, so a stage many others need logs once

    def path_for(self, name: str, params: dict[str, Any], upstream: list[StageResult] | None = None) -> Path:
        """The folder a stage lives in (whether or not it has run)."""
        return self.root / f"{name}-{stage_key(name, params, upstream or [])[:12]}"

    def is_finished(self, name: str, params: dict[str, Any], upstream: list[StageResult] | None = None) -> bool:
        return (self.path_for(name, params, upstream) / MARKER).is_file()

    def run(
        self,
        name: str,
        params: dict[str, Any],
        build: Callable[[Path], dict | None],
        upstream: list[StageResult] | None = None,
    ) -> StageResult:
        """Return the finished stage, calling `build(folder) -> summary` only when not finished.

        `folder` may hold the partial work of an interrupted earlier attempt.
        """
        upstream = upstream or []
        key = stage_key(name, params, upstream)
        if key in self._seen:
            return self._seen[key]
        path = self.path_for(name, params, upstream)
        marker = path / MARKER
        index = len(self.results) + 1
        if marker.is_file():
            meta = json.loads(marker.read_text())
            result = StageResult(name, key, path, meta.get("summary", {}), cached=True, seconds=meta.get("seconds", 0.0))
            self.log(f"[{index}] {name}: cached ({path.name})")
        else:
            resumed = path.is_dir() and any(path.iterdir())
            self.log(f"[{index}] {name}: {'resuming' if resumed else 'running'} ...")
            start = time.monotonic()
            path.mkdir(parents=True, exist_ok=True)
            summary = build(path) or {}
            seconds = time.monotonic() - start
            meta = {"name": name, "key": key, "params": params, "summary": summary, "seconds": seconds,
                    "upstream": [u.path.name for u in upstream]}
            atomic_write_text(marker, json.dumps(meta, indent=2, default=str) + "\n")
            result = StageResult(name, key, path, summary, cached=False, seconds=seconds)
            self.log(f"[{index}] {name}: done in {seconds:.1f} s")
        self.results.append(result)
        self._seen[key] = result
        return result
