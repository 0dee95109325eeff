"""The LSTM cell of the paper (eqs. 7-11), with diagonal peephole weights."""

import keras
from keras import ops

from graves_tf.layers.gradient_clipping import validate_clip
from graves_tf.layers.lstm_sequence import peephole_lstm_step
from graves_tf.layers.precision import matmul
from graves_tf.layers.scan import snapshot


def is_integer_tensor(x):
    return keras.backend.standardize_dtype(x.dtype).startswith(("int", "uint"))


@keras.saving.register_keras_serializable(package="graves_tf")
class PeepholeLSTMCell(keras.layers.Layer):
    """One LSTM layer's cell, as in Graves (2013) eqs. 7-11.

        i_t = sigmoid(W_xi x_t + W_hi h_{t-1} + w_ci * c_{t-1} + b_i)    (7)
        f_t = sigmoid(W_xf x_t + W_hf h_{t-1} + w_cf * c_{t-1} + b_f)    (8)
        c_t = f_t * c_{t-1} + i_t * tanh(W_xc x_t + W_hc h_{t-1} + b_c)  (9)
        o_t = sigmoid(W_xo x_t + W_ho h_{t-1} + w_co * c_t + b_o)        (10)
        h_t = o_t * tanh(c_t)                                            (11)

    The peephole matrices W_ci, W_cf, W_co are diagonal (vectors here); the
    input and output gates look at c_{t-1}, the output gate at c_t.

    The four gates share one fused input kernel ``(input_dim, 4 * units)`` and
    one fused recurrent kernel ``(units, 4 * units)``; gate order along the last
    axis is ``[i, f, c, o]``. Splitting the work into :meth:`project_inputs`
    (the input term plus bias, which callers may compute for a whole sequence
    at once) and :meth:`step` (the recurrent part) lets a stack precompute
    everything that does not depend on h_{t-1}.

    Derivative clipping (section 2.1): when ``clip`` is set, the derivative of
    the loss with respect to each gate's pre-activation (the argument of the
    sigmoid or tanh) is clipped to ``[-clip, clip]``; the forward pass is
    unchanged.

    Args:
        units: number of memory cells.
        clip: derivative clipping limit for the pre-activations, or None.
        forget_bias: initial value of b_f.
    """

    def __init__(self, units, clip=None, forget_bias=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(units) != units or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.clip = validate_clip("clip", clip)
        self.forget_bias = float(forget_bias)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError("PeepholeLSTMCell needs a known input dimension.")
        self.input_dim = int(input_dim)
        u = self.units
        self.kernel = self.add_weight(
            name="kernel", shape=(self.input_dim, 4 * u), initializer="glorot_uniform"
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(u, 4 * u), initializer="orthogonal"
        )

        def bias_initializer(shape, dtype=None):
            zeros = ops.zeros((u,), dtype=dtype)
            return ops.concatenate(
                [zeros, ops.full((u,), self.forget_bias, dtype=dtype), zeros, zeros]
            )

        self.bias = self.add_weight(name="bias", shape=(4 * u,), initializer=bias_initializer)
        self.peephole_input = self.add_weight(
            name="peephole_input", shape=(u,), initializer="zeros"
        )
        self.peephole_forget = self.add_weight(
            name="peephole_forget", shape=(u,), initializer="zeros"
        )
        self.peephole_output = self.add_weight(
            name="peephole_output", shape=(u,), initializer="zeros"
        )

    def project_inputs(self, inputs, rows=None):
        """The input term of eqs. 7-10: ``inputs @ W_x[rows] + b``.

        Args:
            inputs: ``(..., d)`` floats, or integer ids ``(...)`` selecting rows
                of the kernel (a one-hot input, computed as a gather; id -1 is
                the all-zero null input of section 2).
            rows: ``(start, stop)`` of the kernel rows these inputs feed, for
                cells whose input is a concatenation; None means all rows.
        """
        start, stop = rows if rows is not None else (0, self.input_dim)
        kernel = self.kernel[start:stop]
        if is_integer_tensor(inputs):
            is_real = ops.expand_dims(ops.cast(inputs >= 0, self.compute_dtype), -1)
            projected = ops.take(kernel, ops.maximum(inputs, 0), axis=0) * is_real
        else:
            projected = matmul(inputs, kernel)
        return projected + self.bias

    def recurrent_weights(self):
        """The weights :meth:`step` uses, read once as tensors.

        A loop over timesteps reads them here, outside the loop, and passes
        them to every step: no variable read (and no per-step gradient
        accumulator for one) inside the loop, which XLA also requires.
        """
        return {
            "recurrent_kernel": snapshot(self.recurrent_kernel),
            "peephole_input": snapshot(self.peephole_input),
            "peephole_forget": snapshot(self.peephole_forget),
            "peephole_output": snapshot(self.peephole_output),
        }

    def step(self, projected_inputs, states, weights=None):
        """Eqs. 7-11 for one timestep.

        Args:
            projected_inputs: ``(batch, 4 * units)``, the input term including the bias.
            states: ``[h_{t-1}, c_{t-1}]``.
            weights: :meth:`recurrent_weights`, or None to read them now.

        Returns:
            ``(h_t, [h_t, c_t])``.
        """
        weights = weights or self.recurrent_weights()
        h_prev, c_prev = states
        z = projected_inputs + matmul(h_prev, weights["recurrent_kernel"])
        return self.activate(z, c_prev, weights)

    def activate(self, z, c_prev, weights):
        """Eqs. 7-11 from the complete gate pre-activations ``z`` (without the peephole terms).

        ``z`` is ``(batch, 4 * units)``: every input term, the recurrent term
        and the bias. Returns ``(h_t, [h_t, c_t])``.
        """
        *_, c, _, h = peephole_lstm_step(z, c_prev, weights, self.clip)
        return h, [h, c]

    def call(self, inputs, states):
        """Keras RNN cell interface: ``(x_t, [h, c]) -> (h_t, [h_t, c_t])``."""
        return self.step(self.project_inputs(inputs), states)

    def get_initial_state(self, batch_size=None):
        zeros = ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        return [zeros, zeros]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, clip=self.clip, forget_bias=self.forget_bias)
        return config
