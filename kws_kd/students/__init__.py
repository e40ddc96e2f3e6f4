"""Keyword-spotting students (Keras 3) with a removable temporal-attention branch.

Importing this package imports Keras/TensorFlow: do it inside CLI handlers.
"""

from kws_kd.students.attention import strip
from kws_kd.students.registry import (
    STUDENTS,
    attention_length,
    build_student,
    config_to_dict,
    default_config,
    get_spec,
    make_config,
)

__all__ = [
    "STUDENTS",
    "attention_length",
    "build_student",
    "config_to_dict",
    "default_config",
    "get_spec",
    "make_config",
    "strip",
]
