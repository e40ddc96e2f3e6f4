"""`load_dataset(path)`: the one entry point every command uses to open a dataset.

Users point kws-kd at a folder; this module decides what it is, so commands
never need a `--format` flag:

* a kws-kd materialised folder (`manifest.csv` + `dataset.json`, written by
  `kws-kd data noisy` / `data synth`-derived builds),
* a Speech Commands folder (training-archive or test-archive layout),
* an FSD50K root (`FSD50K.ground_truth/`).

numpy-only.
"""

from __future__ import annotations

from pathlib import Path

from kws_kd.data.manifest import DATASET_JSON, MANIFEST_CSV, Manifest, read_manifest
from kws_kd.errors import KwsKdError


def detect_layout(path: str | Path) -> str:
    """'manifest', 'speech_commands' or 'fsd50k'; KwsKdError if it is none of them."""
    from kws_kd.data.fsd50k import is_fsd50k
    from kws_kd.data.speech_commands import is_speech_commands

    path = Path(path)
    if not path.exists():
        raise KwsKdError(f"{path}: no such dataset folder")
    if not path.is_dir():
        raise KwsKdError(f"{path}: is a file; expected a dataset folder")
    if (path / MANIFEST_CSV).is_file() or (path / DATASET_JSON).is_file():
        return "manifest"
    if is_fsd50k(path):
        return "fsd50k"
    if is_speech_commands(path):
        return "speech_commands"
    raise KwsKdError(
        f"{path}: not a dataset folder (no {MANIFEST_CSV}, no Speech Commands word folders, "
        "no FSD50K.ground_truth/)"
    )


def load_dataset(path: str | Path, **options) -> Manifest:
    """Open any supported dataset folder as a `Manifest`.

    `options` go to the layout's reader: for Speech Commands `labels`,
    `split_method`, `validation_percent`, `test_percent`, `seed`, ...; for
    FSD50K `clip_seconds`. A materialised folder takes no options (its splits
    and labels are fixed on disk); options given for it raise an error rather
    than being silently ignored.
    """
    layout = detect_layout(path)
    if layout == "manifest":
        given = {k: v for k, v in options.items() if v is not None}
        if given:
            raise KwsKdError(f"{path}: a materialised dataset takes no reader options (got {sorted(given)})")
        return read_manifest(path)
    if layout == "fsd50k":
        from kws_kd.data.fsd50k import read_fsd50k as reader
    else:
        from kws_kd.data.speech_commands import read_speech_commands as reader
    given = {k: v for k, v in options.items() if v is not None}
    import inspect

    unknown = sorted(set(given) - set(inspect.signature(reader).parameters))
    if unknown:
        raise KwsKdError(f"{path}: option(s) {unknown} do not apply to a {layout} folder")
    return reader(path, **given)
