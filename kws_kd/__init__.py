"""kws-kd: temporal knowledge distillation for on-device audio classifiers."""

__version__ = "0.1.0"
