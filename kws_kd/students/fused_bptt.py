"""The fused training recurrence's maths: hoisted input projection and hand-written BPTT.

`kws_kd.students.recurrent.RNN(fused=True)` calls `project_inputs` once for
all frames, then `gru_recurrence` or `lstmp_recurrence`. Each joins a forward
`tf.while_loop` (per step: the recurrent matmul(s) and the gate maths of
`kws_kd.students.cells`) and a hand-written backward-through-time loop with
`tf.custom_gradient`; the recurrent weight gradients are one matmul over all
steps after the loop, instead of autodiff's per-step gradients summed with
AddN (which dominate the cost of an 8 s clip, ~400 steps). Kept apart from the
layer so the layer file stays about Keras, and this one about the maths.

Tensors here are time-major ([T, B, ...]), the initial state is zero, the
carried state and element-wise maths are float32; `dtype` (tf.float32 or
tf.bfloat16) is the operand type of the matmuls only. TensorFlow is imported
inside each function, as in the rest of kws_kd's graph code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf


def _matmul(a, b, dtype, **kwargs):
    """`a @ b` with operands cast to `dtype` for the product only; float32 result."""
    import tensorflow as tf

    if dtype == tf.float32:
        return tf.matmul(a, b, **kwargs)
    return tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype), **kwargs), tf.float32)


def _matmul_steps(a, b, dtype, transpose_a: bool = False):
    """One matmul over all steps: [T, B, m] x [m, n] -> [T, B, n]; with `transpose_a`,
    [T, B, m] x [T, B, n] -> [m, n] (the sum over every step and batch row)."""
    import tensorflow as tf

    a2 = tf.reshape(a, [-1, a.shape[-1]])
    if transpose_a:
        return _matmul(a2, tf.reshape(b, [-1, b.shape[-1]]), dtype, transpose_a=True)
    shape = tf.concat([tf.shape(a)[:-1], [b.shape[-1]]], axis=0)
    return tf.reshape(_matmul(a2, b, dtype), shape)


def project_inputs(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Input projection of every frame, hoisted out of the loop: x @ kernel + bias.

    Plain ops, so autodiff gives d x, d kernel and d bias from the gradient the
    recurrence returns for its output (one matmul each over all frames)."""
    return _matmul_steps(x, kernel, dtype) + bias


def _shifted(seq):
    """[s_0 .. s_{T-1}] -> [0, s_0 .. s_{T-2}]: the previous state of every step (zero initial state)."""
    import tensorflow as tf

    return tf.concat([tf.zeros_like(seq[:1]), seq[:-1]], axis=0)


def _sequence(steps, like, width: int):
    """An empty per-step TensorArray [B, width] (kept after reads: the backward pass reads it)."""
    import tensorflow as tf

    return tf.TensorArray(
        tf.float32, size=steps, element_shape=[like.shape[1], width], clear_after_read=False
    )


def _steps_of(seq):
    """A [T, ...] tensor as a TensorArray of its steps, for reading inside a loop."""
    import tensorflow as tf

    return tf.TensorArray(tf.float32, size=tf.shape(seq)[0], element_shape=seq.shape[1:]).unstack(seq)


def gru_recurrence(xp: tf.Tensor, recurrent_kernel: tf.Tensor, recurrent_bias: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """GRU outputs H [T, B, u] from the projected inputs xp [T, B, 3u], zero initial state.

    Forward `_gru_forward`, backward `_gru_backward`, joined by tf.custom_gradient;
    the forward's per-step gates are kept for the backward (not recomputed)."""
    import tensorflow as tf

    @tf.custom_gradient
    def recurrence(xp, u_kernel, u_bias):
        h_all, saved = _gru_forward(xp, u_kernel, u_bias, dtype)

        def grad(d_h_all):
            return _gru_backward(d_h_all, h_all, saved, u_kernel, dtype)

        return h_all, grad

    return recurrence(xp, recurrent_kernel, recurrent_bias)


def _gru_forward(xp, u_kernel, u_bias, dtype):
    """The GRU loop (maths in `kws_kd.students.cells.GRUCell`): per step one matmul h U + b' and the gate maths.

    Returns the outputs [T, B, u] and the per-step TensorArrays the backward needs:
    zr = [z, r], n, hu_n (the recurrent part of the candidate) and h_{t-1} - n."""
    import tensorflow as tf

    units = u_kernel.shape[0]
    steps, batch = tf.shape(xp)[0], tf.shape(xp)[1]
    u_mm = tf.cast(u_kernel, dtype)  # cast the weights once, not per step
    xs = _steps_of(xp)
    hs = _sequence(steps, xp, units)
    saved = tuple(_sequence(steps, xp, w) for w in (2 * units, units, units, units))

    def step(t, h, hs, saved):
        x_zr, x_n = tf.split(xs.read(t), [2 * units, units], axis=-1)
        h_zr, h_n = tf.split(tf.nn.bias_add(_matmul(h, u_mm, dtype), u_bias), [2 * units, units], axis=-1)
        zr = tf.sigmoid(x_zr + h_zr)
        z, r = tf.split(zr, 2, axis=-1)
        n = tf.tanh(x_n + r * h_n)
        h_minus_n = h - n
        h = n + z * h_minus_n  # = z h + (1 - z) n
        saved = tuple(ta.write(t, v) for ta, v in zip(saved, (zr, n, h_n, h_minus_n)))
        return t + 1, h, hs.write(t, h), saved

    h0 = tf.zeros(tf.stack([batch, units]), tf.float32)
    _, _, hs, saved = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, hs, saved))
    return hs.stack(), saved


def _gru_backward(d_h_all, h_all, saved, u_kernel, dtype):
    """Backward through time of `_gru_forward`; returns (d xp, d U, d b').

    With hu = h_{t-1} U + b' = [hu_z, hu_r, hu_n], pre-activations
    a_z = xp_z + hu_z, a_r = xp_r + hu_r, a_n = xp_n + r hu_n, and g_t the total
    gradient on h_t (its output's gradient plus what step t+1 sends back):
      d a_n = g (1 - z) (1 - n^2)
      d a_z = g (h_{t-1} - n) z (1 - z)
      d a_r = d a_n hu_n r (1 - r)
      d xp_t = [d a_z, d a_r, d a_n]          d hu_t = [d a_z, d a_r, d a_n r]
      g_{t-1} = d out_{t-1} + g z + d hu_t U^T
    The loop does only this (SigmoidGrad / TanhGrad give y (1 - y) and 1 - y^2
    products in one op each) and one matmul per step. The recurrent weight
    gradients come after the loop as one matmul / reduction over [T * B]:
      d U = sum_t h_{t-1}^T d hu_t,   d b' = sum_t d hu_t.
    """
    import tensorflow as tf

    zrs, ns, hns, h_minus_ns = saved
    units = u_kernel.shape[0]
    steps = tf.shape(h_all)[0]
    u_t = tf.cast(tf.transpose(u_kernel), dtype)
    d_out = _steps_of(d_h_all)
    d_xps, d_hus = _sequence(steps, h_all, 3 * units), _sequence(steps, h_all, 3 * units)

    def step(t, g_next, d_xps, d_hus):
        g = d_out.read(t) + g_next
        zr, n = zrs.read(t), ns.read(t)
        z, r = tf.split(zr, 2, axis=-1)
        gz = g * z
        da_n = tf.raw_ops.TanhGrad(y=n, dy=g - gz)
        da_zr = tf.raw_ops.SigmoidGrad(
            y=zr, dy=tf.concat([g * h_minus_ns.read(t), da_n * hns.read(t)], axis=-1)
        )
        d_hu = tf.concat([da_zr, da_n * r], axis=-1)
        d_xp = tf.concat([da_zr, da_n], axis=-1)
        return t - 1, gz + _matmul(d_hu, u_t, dtype), d_xps.write(t, d_xp), d_hus.write(t, d_hu)

    g0 = tf.zeros_like(d_h_all[0])
    _, _, d_xps, d_hus = tf.while_loop(lambda t, *_: t >= 0, step, (steps - 1, g0, d_xps, d_hus))
    d_hu = d_hus.stack()
    d_u = _matmul_steps(_shifted(h_all), d_hu, dtype, transpose_a=True)
    d_b = tf.reduce_sum(d_hu, axis=[0, 1])
    return d_xps.stack(), d_u, d_b


def lstmp_recurrence(xp: tf.Tensor, recurrent_kernel: tf.Tensor, peephole: tf.Tensor, projection_kernel: tf.Tensor,
                     dtype: tf.DType) -> tf.Tensor:
    """LSTMP outputs r [T, B, p] from the projected inputs xp [T, B, 4u], zero initial state.

    Forward `_lstmp_forward`, backward `_lstmp_backward`, joined by tf.custom_gradient;
    the forward's per-step gates are kept for the backward (not recomputed)."""
    import tensorflow as tf

    @tf.custom_gradient
    def recurrence(xp, r_kernel, peep, p_kernel):
        r_all, saved = _lstmp_forward(xp, r_kernel, peep, p_kernel, dtype)

        def grad(d_r_all):
            return _lstmp_backward(d_r_all, r_all, saved, r_kernel, peep, p_kernel, dtype)

        return r_all, grad

    return recurrence(xp, recurrent_kernel, peephole, projection_kernel)


def _lstmp_forward(xp, r_kernel, peep, p_kernel, dtype):
    """The LSTMP loop (maths in `kws_kd.students.cells.PeepholeLSTMCell`): per step r_{t-1} R, the gates, (o tanh c) P.

    Returns the outputs r [T, B, p] and the per-step TensorArrays the backward
    needs: c, i, f, g = tanh(a_g), o, tanh(c), m = o tanh(c)."""
    import tensorflow as tf

    units, proj = p_kernel.shape
    steps, batch = tf.shape(xp)[0], tf.shape(xp)[1]
    r_mm, p_mm = tf.cast(r_kernel, dtype), tf.cast(p_kernel, dtype)
    p_i, p_f, p_o = tf.unstack(peep)
    xs = _steps_of(xp)
    rs = _sequence(steps, xp, proj)
    saved = tuple(_sequence(steps, xp, units) for _ in range(7))

    def step(t, r, c, rs, saved):
        a_i, a_f, a_g, a_o = tf.split(xs.read(t) + _matmul(r, r_mm, dtype), 4, axis=-1)
        i = tf.sigmoid(a_i + p_i * c)
        f = tf.sigmoid(a_f + p_f * c)
        g = tf.tanh(a_g)
        c = f * c + i * g
        o = tf.sigmoid(a_o + p_o * c)
        tanh_c = tf.tanh(c)
        m = o * tanh_c
        r = _matmul(m, p_mm, dtype)
        saved = tuple(ta.write(t, v) for ta, v in zip(saved, (c, i, f, g, o, tanh_c, m)))
        return t + 1, r, c, rs.write(t, r), saved

    r0 = tf.zeros(tf.stack([batch, proj]), tf.float32)
    c0 = tf.zeros(tf.stack([batch, units]), tf.float32)
    _, _, _, rs, saved = tf.while_loop(lambda t, *_: t < steps, step, (0, r0, c0, rs, saved))
    return rs.stack(), saved


def _lstmp_backward(d_r_all, r_all, saved, r_kernel, peep, p_kernel, dtype):
    """Backward through time of `_lstmp_forward`; returns (d xp, d R, d peephole, d P).

    With a = xp_t + r_{t-1} R = [a_i, a_f, a_g, a_o], m = o tanh(c), r = m P, and
    per step dr (total gradient on r_t) and dc' (gradient on c_t from step t+1):
      dm   = dr P^T
      da_o = dm tanh(c) o (1 - o)
      dc   = dc' + dm o (1 - tanh^2 c) + da_o p_o
      da_i = dc g i (1 - i),  da_f = dc c_{t-1} f (1 - f),  da_g = dc i (1 - g^2)
      dc_{t-1}' = dc f + da_i p_i + da_f p_f
      dr_{t-1}  = d out_{t-1} + [da_i, da_f, da_g, da_o] R^T
    The loop does the two matmuls dr P^T and da R^T and element-wise products
    only. After the loop, over [T * B]:
      d xp = da,  d R = sum_t r_{t-1}^T da_t,  d P = sum_t m_t^T dr_t,
      d p_i = sum da_i c_{t-1},  d p_f = sum da_f c_{t-1},  d p_o = sum da_o c_t.
    """
    import tensorflow as tf

    cs, i_s, fs, gs, os_, tanh_cs, ms = saved
    units, proj = p_kernel.shape
    steps = tf.shape(r_all)[0]
    p_i, p_f, p_o = tf.unstack(peep)
    r_t, p_t = tf.cast(tf.transpose(r_kernel), dtype), tf.cast(tf.transpose(p_kernel), dtype)
    c_all = cs.stack()
    c_prev = _shifted(c_all)
    d_out, c_prevs = _steps_of(d_r_all), _steps_of(c_prev)
    das, drs = _sequence(steps, r_all, 4 * units), _sequence(steps, r_all, proj)

    def step(t, dr_next, dc_next, das, drs):
        dr = d_out.read(t) + dr_next
        i, f, g, o, tanh_c = i_s.read(t), fs.read(t), gs.read(t), os_.read(t), tanh_cs.read(t)
        dm = _matmul(dr, p_t, dtype)
        da_o = tf.raw_ops.SigmoidGrad(y=o, dy=dm * tanh_c)
        dc = dc_next + tf.raw_ops.TanhGrad(y=tanh_c, dy=dm * o) + da_o * p_o
        da_i = tf.raw_ops.SigmoidGrad(y=i, dy=dc * g)
        da_f = tf.raw_ops.SigmoidGrad(y=f, dy=dc * c_prevs.read(t))
        da_g = tf.raw_ops.TanhGrad(y=g, dy=dc * i)
        da = tf.concat([da_i, da_f, da_g, da_o], axis=-1)
        dc_prev = dc * f + da_i * p_i + da_f * p_f
        return t - 1, _matmul(da, r_t, dtype), dc_prev, das.write(t, da), drs.write(t, dr)

    dr0 = tf.zeros_like(d_r_all[0])
    dc0 = tf.zeros_like(c_all[0])
    _, _, _, das, drs = tf.while_loop(lambda t, *_: t >= 0, step, (steps - 1, dr0, dc0, das, drs))
    d_a = das.stack()
    d_r_kernel = _matmul_steps(_shifted(r_all), d_a, dtype, transpose_a=True)
    d_p_kernel = _matmul_steps(ms.stack(), drs.stack(), dtype, transpose_a=True)
    da_i, da_f, _, da_o = tf.split(d_a, 4, axis=-1)
    d_peep = tf.stack(
        [
            tf.reduce_sum(da_i * c_prev, axis=[0, 1]),
            tf.reduce_sum(da_f * c_prev, axis=[0, 1]),
            tf.reduce_sum(da_o * c_all, axis=[0, 1]),
        ]
    )
    return d_a, d_r_kernel, d_peep, d_p_kernel
