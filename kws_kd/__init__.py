"""kws-kd: temporal knowledge distillation for on-device audio classifiers.

The Python API (docs/python_api.md) is importable from here; it loads
TensorFlow only when first used, so `import kws_kd` (and the CLI's `--help`)
stays fast.
"""

__version__ = "0.1.0"

#: name -> module that defines it
_API = {
    "build_student": "kws_kd.students.registry",
    "strip": "kws_kd.students.attention",
    "TemporalDistiller": "kws_kd.distiller",
    "AttentionDistillation": "kws_kd.distiller",
    "distillation_dataset": "kws_kd.api",
    "export_tflite": "kws_kd.api",
    "save_student": "kws_kd.api",
    "load_student": "kws_kd.api",
    "TFLiteClassifier": "kws_kd.tflite.runner",
    "TrainOptions": "kws_kd.train_options",
    "train": "kws_kd.train",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'kws_kd' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
