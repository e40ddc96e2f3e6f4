"""Shorten the internal tensor names of a .tflite file.

The converter names every tensor after the TF ops fused into it, e.g.
`att_rnn_1/gru1_bw_1/gru1_bw_cell_429/MatMul;att_rnn_1/gru1_bw_1/...`, up to
12,000 characters each. A recurrence unrolled over 399 frames has ~34,000
tensors, so at 8 s the names alone were 11 MB of a 31 MB int8 Att-RNN file.
Nothing at run time reads them: LiteRT addresses tensors by index and apps
by the signature. So every tensor that is not a subgraph input or output is
renamed `t<index>`; the model inputs/outputs and the signature defs (which
the runner and the Android app use) keep their names.
"""

from __future__ import annotations


def shorten_tensor_names(model_bytes: bytes) -> bytes:
    """The same model with internal tensors renamed `t<index>` (I/O names and signatures kept)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    changed = False
    for subgraph in model.subgraphs:
        keep = set(int(i) for i in list(subgraph.inputs) + list(subgraph.outputs))
        for index, tensor in enumerate(subgraph.tensors):
            if index in keep:
                continue
            short = f"t{index}".encode()
            if tensor.name != short:
                tensor.name = short
                changed = True
    if not changed:
        return bytes(model_bytes)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
