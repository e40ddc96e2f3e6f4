"""Keyword-spotting students (Keras 3) with a removable temporal-attention branch.

Importing this package imports Keras/TensorFlow: do it inside CLI handlers.
The public names are the registry's (`kws_kd.students.registry.__all__`).
"""

from kws_kd.students import registry
from kws_kd.students.registry import *  # noqa: F403

__all__ = list(registry.__all__)
