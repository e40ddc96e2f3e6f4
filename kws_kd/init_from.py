"""`kws-kd train --init-from`: start a run from another run's weights (warm start, curriculum).

A student's weights do not depend on the clip length, so a run trained on clean
1 s keywords can start an 8 s run. What must match is everything that shapes the
weights: the student, its label list (the logits' order) and its architecture
fields. Training-only hyper-parameters (`TRAINING_ONLY_FIELDS`) may differ.

Every check reads config files only, so a mismatch is refused in
`kws_kd.train.prepare`, before the new run folder is written.
"""

from __future__ import annotations

from pathlib import Path

from kws_kd.errors import KwsKdError
from kws_kd.run import BEST_WEIGHTS, CONFIG_JSON, load_run

#: Student config fields that change training, not the weights' shapes.
TRAINING_ONLY_FIELDS = ("spec_augment", "dropout", "bn_momentum")


def _architecture(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in TRAINING_ONLY_FIELDS}


def resolve_init(source: str, model: str, labels: list[str], student_config: dict) -> Path:
    """The weights file `source` names (a run folder -> its best weights), checked against the new run.

    Raises a one-line KwsKdError naming `source` when it is not a run (or a run's
    `.weights.h5`), or when its student, labels or architecture differ.
    """
    path = Path(source)
    if path.is_dir():
        run_dir, weights = path, path / BEST_WEIGHTS
    elif path.is_file() and path.name.endswith(".weights.h5"):
        run_dir, weights = path.parent, path
    else:
        raise KwsKdError(f"--init-from {source}: not a run folder or a .weights.h5 file")
    if not (run_dir / CONFIG_JSON).is_file():
        raise KwsKdError(f"--init-from {source}: no {CONFIG_JSON} in {run_dir} (needed to check the student and labels)")
    if not weights.is_file():
        raise KwsKdError(f"--init-from {source}: {weights.name} missing (the run never finished a validation)")
    src = load_run(run_dir).config
    if src.model != model:
        raise KwsKdError(f"--init-from {source}: a {src.model} run cannot initialise a {model} run")
    if list(src.labels) != list(labels):
        raise KwsKdError(f"--init-from {source}: its labels ({len(src.labels)}: {', '.join(src.labels[:4])}, ...) "
                         f"differ from the dataset's ({len(labels)}: {', '.join(labels[:4])}, ...)")
    a, b = _architecture(src.student_config), _architecture(student_config)
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise KwsKdError(f"--init-from {source}: student config differs in {', '.join(diff)}")
    return weights.resolve()


def load_init(model, weights: Path) -> None:
    """Load `weights` into a freshly built training model, keeping the new run's random-generator states.

    The weights file holds no generator state (SpecAugment's masks keep coming
    from this run's own seed), so a plain load is exact.
    """
    try:
        model.load_weights(str(weights))
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise KwsKdError(f"--init-from {weights}: cannot load into {model.name} ({type(exc).__name__}: {exc})") from None
