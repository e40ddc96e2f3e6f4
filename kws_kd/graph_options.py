"""Names of the training-graph options, importable without TensorFlow (the CLI's `--help` stays fast).

The options themselves live in `kws_kd.students.base.BuildOptions`.
"""

from typing import Literal, get_args

#: Training-graph precisions: "float32", or "mixed_bfloat16" (bfloat16 matmuls and
#: convolutions on the CPU's AMX/AVX512-BF16 units, float32 variables, float32
#: front end, attention and logits).
Precision = Literal["float32", "mixed_bfloat16"]
PRECISIONS = get_args(Precision)
