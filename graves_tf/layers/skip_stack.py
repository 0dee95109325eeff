"""A stack of peephole LSTM layers with skip connections (eqs. 1-4, 52-53)."""

import keras
from keras import ops

from graves_tf.layers.lstm_sequence import lstm_sequence, windowed_lstm_sequence
from graves_tf.layers.peephole_lstm_cell import PeepholeLSTMCell
from graves_tf.layers.precision import matmul
from graves_tf.layers.scan import scan


@keras.saving.register_keras_serializable(package="graves_tf")
class SkipStack(keras.layers.Layer):
    """N stacked :class:`PeepholeLSTMCell` layers with the paper's skip connections.

    Prediction network (section 2):

        h^1_t = H(W_{i h1} x_t + W_{h1 h1} h^1_{t-1} + b^1)                           (1)
        h^n_t = H(W_{i hn} x_t + W_{h(n-1) hn} h^{n-1}_t + W_{hn hn} h^n_{t-1} + b^n)    (2)

    the input feeds every layer and every layer feeds the output (eq. 3, done
    by the output head on the concatenated hidden sequences this layer returns).

    With a conditioning layer (a :class:`GaussianWindow`, section 5.1) the
    window vector is fed to the first layer with one step of delay and to
    layers 2..N at the same step:

        h^1_t = H(W_{i h1} x_t + W_{h1 h1} h^1_{t-1} + W_{w h1} w_{t-1} + b^1)             (52)
        h^n_t = H(W_{i hn} x_t + W_{h(n-1) hn} h^{n-1}_t + W_{hn hn} h^n_{t-1} + W_{w hn} w_t + b^n)  (53)

    The input of layer n is the concatenation ``[x_t, h^{n-1}_t, w]`` (parts
    absent where they do not apply) and its kernel rows follow that order.

    Two ways to run it share the cells' and the window's ``step`` code:
    :meth:`call` runs a whole (teacher-forced) sequence, projecting every input
    that does not depend on the recurrence for all timesteps at once and
    running the layers one after another where the dependency graph allows;
    :meth:`step` advances one timestep from an explicit state (sampling,
    dynamic evaluation, export).

    Args:
        input_dim: size of x_t (for integer inputs: the number of classes).
        units: LSTM cells per layer.
        num_layers: N.
        clip: derivative clipping limit of the LSTM pre-activations, or None.
        conditioning: a :class:`GaussianWindow` (or its config), or None.
        forget_bias: initial forget gate bias.
        fused_backward: run the layers through :func:`lstm_sequence` and
            :func:`windowed_lstm_sequence` (hand-written backpropagation
            through time: the same numbers with fewer operations); False
            differentiates the step-by-step graph automatically.
    """

    def __init__(
        self,
        input_dim,
        units,
        num_layers,
        clip=None,
        conditioning=None,
        forget_bias=1.0,
        fused_backward=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("input_dim", input_dim), ("units", units), ("num_layers", num_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.clip = clip
        self.forget_bias = float(forget_bias)
        self.fused_backward = bool(fused_backward)
        if isinstance(conditioning, dict):
            conditioning = keras.saving.deserialize_keras_object(conditioning)
        self.conditioning = conditioning
        # One attribute per cell (not a list): TensorFlow checkpoints track
        # Layer attributes, but not the lists Keras 3 wraps.
        for n in range(self.num_layers):
            cell = PeepholeLSTMCell(
                units, clip=clip, forget_bias=forget_bias, dtype=self.dtype_policy, name=f"lstm_{n + 1}"
            )
            setattr(self, f"lstm_{n + 1}", cell)
        self.conditioning_dim = conditioning.output_dim if conditioning is not None else 0

    @property
    def cells(self):
        return [getattr(self, f"lstm_{n + 1}") for n in range(self.num_layers)]

    def build(self, input_shape=None):
        for layer, cell in enumerate(self.cells):
            width = self.input_dim + (self.units if layer > 0 else 0) + self.conditioning_dim
            cell.build((None, width))
        if self.conditioning is not None:
            self.conditioning.build((None, self.units))
        self.built = True

    @property
    def output_dim(self):
        """Size of the concatenated hidden vectors ``[h^1, ..., h^N]`` fed to the output."""
        return self.units * self.num_layers

    def initial_state(self, batch_size):
        """All-zero state: ``{"lstm": [[h, c] per layer], "window": ...}``."""
        state = {"lstm": [cell.get_initial_state(batch_size) for cell in self.cells]}
        if self.conditioning is not None:
            state["window"] = self.conditioning.initial_state(batch_size)
        return state

    def _project_x(self, inputs):
        return [cell.project_inputs(inputs, (0, self.input_dim)) for cell in self.cells]

    def _layer_input(self, layer, x_projection, below, window):
        """The input terms of layer ``layer`` (eqs. 1-2, 52-53) for all timesteps at once: one matmul."""
        parts = [p for p in (below, window) if p is not None]
        if not parts:
            return x_projection
        inputs = ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        return x_projection + matmul(inputs, self.cells[layer].kernel[self.input_dim :])

    def step_weights(self):
        """Every weight the recurrence reads, as tensors: read once, outside any loop over time.

        ``lstm``: each cell's :meth:`PeepholeLSTMCell.recurrent_weights`;
        ``stacked_kernels``: per layer, the kernel rows of every input but
        x_t stacked on the recurrent kernel, so that one matmul of
        ``[h^{n-1}_t, w, h^n_{t-1}]`` gives all of eqs. 1-2 / 52-53 but the x
        term; with a conditioning layer, ``window``: its step weights.
        """
        weights = {"lstm": [cell.recurrent_weights() for cell in self.cells]}
        weights["stacked_kernels"] = [
            ops.concatenate([cell.kernel[self.input_dim :], w["recurrent_kernel"]], axis=0)
            for cell, w in zip(self.cells, weights["lstm"])
        ]
        if self.conditioning is not None:
            weights["window"] = self.conditioning.step_weights()
        return weights

    def _layer_step(self, layer, x_projection, below, window, lstm_state, weights):
        """Eqs. 1-2 / 52-53 and 7-11 of one layer for one timestep, given its x term (bias included)."""
        h_prev, c_prev = lstm_state
        parts = [p for p in (below, window) if p is not None] + [h_prev]
        inputs = ops.concatenate(parts, axis=-1) if len(parts) > 1 else h_prev
        z = x_projection + matmul(inputs, weights["stacked_kernels"][layer])
        return self.cells[layer].activate(z, c_prev, weights["lstm"][layer])

    def _first_layer_step(self, x_projection, lstm_state, window_state, context, weights):
        """Eq. 52 and the window (eqs. 46-51) for one timestep; shared by :meth:`step` and :meth:`call`."""
        h, new_lstm = self._layer_step(0, x_projection, None, window_state["w"], lstm_state, weights)
        w, new_window, extras = self.conditioning.step(h, window_state, context, weights["window"])
        return h, w, new_lstm, new_window, extras

    def step(self, inputs, state, context=None, weights=None):
        """One timestep from an explicit state.

        Args:
            inputs: x_t, ``(batch, input_dim)`` floats or ``(batch,)`` integer ids.
            state: as returned by :meth:`initial_state` or a previous step.
            context: the conditioning layer's context (e.g. the encoded text).
            weights: :meth:`step_weights`; a loop should read them once and
                pass them to every step. None reads them now.

        Returns:
            ``(hidden, new_state, extras)``: hidden is ``[h^1_t, ..., h^N_t]``;
            extras holds the conditioning layer's per-step outputs (phi).
        """
        weights = weights or self.step_weights()
        x_projection = self._project_x(inputs)
        new_lstm, hidden, extras = [], [], {}
        new_state = {}
        window = None
        for n in range(self.num_layers):
            if n == 0 and self.conditioning is not None:
                h, window, layer_state, new_state["window"], extras = self._first_layer_step(
                    x_projection[0], state["lstm"][0], state["window"], context, weights
                )
            else:
                below = hidden[-1] if n else None
                h, layer_state = self._layer_step(n, x_projection[n], below, window, state["lstm"][n], weights)
            hidden.append(h)
            new_lstm.append(layer_state)
        new_state["lstm"] = new_lstm
        return hidden, new_state, extras

    def call(self, inputs, initial_state=None, step_mask=None, context=None):
        """Runs a whole sequence (teacher forcing).

        Args:
            inputs: ``(batch, T, input_dim)`` floats or ``(batch, T)`` ids.
            initial_state: a state as from :meth:`initial_state`; zeros if None.
            step_mask: ``(batch, T)``, 1 for real steps; at masked (0) steps the
                state is carried unchanged. All ones if None.
            context: the conditioning layer's context.

        Returns:
            A dict: ``hidden`` the list of ``(batch, T, units)`` hidden
            sequences, ``final_state``, and for a conditioned stack ``window``
            ``(batch, T, V)``, ``phi`` ``(batch, T, U)`` and ``phi_end`` ``(batch, T)``.
        """
        batch_size, num_steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
        if initial_state is None:
            initial_state = self.initial_state(batch_size)
        if step_mask is None:
            step_mask = ops.ones((batch_size, num_steps), dtype=self.compute_dtype)
        weights = self.step_weights()
        time_major = lambda x: ops.moveaxis(x, 1, 0)  # noqa: E731
        batch_major = lambda x: ops.moveaxis(x, 0, 1)  # noqa: E731
        mask_t = ops.expand_dims(time_major(ops.cast(step_mask, self.compute_dtype)), -1)
        x_projection = self._project_x(time_major(inputs))

        def keep_masked(m, new, old):
            def select(a, b):
                m_a = ops.reshape(m, (-1,) + (1,) * (len(a.shape) - 1))
                return m_a * a + (1.0 - m_a) * b

            return keras.tree.map_structure(select, new, old)

        final_state = {"lstm": list(initial_state["lstm"])}
        result = {}
        hidden_seqs = []
        first_layer = 0
        window_seq = None
        if self.conditioning is not None and self.fused_backward:
            layer_weights = dict(
                weights["lstm"][0],
                stacked_kernel=weights["stacked_kernels"][0],
                window_kernel=weights["window"]["kernel"],
                window_bias=weights["window"]["bias"],
            )
            (h_seq, window_seq, phi, phi_end), last_lstm, last_window = windowed_lstm_sequence(
                x_projection[0], mask_t, initial_state["lstm"][0], initial_state["window"], layer_weights,
                context, self.cells[0].clip,
            )
        elif self.conditioning is not None:

            def first_layer_and_window(carry, xs):
                z_x, m = xs
                lstm_state, window_state = carry
                h, w, new_lstm, new_window, extras = self._first_layer_step(
                    z_x, lstm_state, window_state, context, weights
                )
                new_carry = keep_masked(m, (new_lstm, new_window), carry)
                return new_carry, (h, w, extras["phi"], extras["phi_end"])

            (last_lstm, last_window), (h_seq, window_seq, phi, phi_end) = scan(
                first_layer_and_window,
                (initial_state["lstm"][0], initial_state["window"]),
                (x_projection[0], mask_t),
            )
        if self.conditioning is not None:
            final_state["lstm"][0] = last_lstm
            final_state["window"] = last_window
            hidden_seqs.append(h_seq)
            result.update(
                window=batch_major(window_seq), phi=batch_major(phi), phi_end=batch_major(phi_end)
            )
            first_layer = 1

        for n in range(first_layer, self.num_layers):
            cell = self.cells[n]
            below = hidden_seqs[-1] if n else None
            z_seq = self._layer_input(n, x_projection[n], below, window_seq)

            if self.fused_backward:
                h0, c0 = initial_state["lstm"][n]
                h_seq, h_last, c_last = lstm_sequence(z_seq, mask_t, h0, c0, weights["lstm"][n], cell.clip)
                final_state["lstm"][n] = [h_last, c_last]
            else:

                def layer_scan(carry, xs, cell=cell, cell_weights=weights["lstm"][n]):
                    z, m = xs
                    h, new_state = cell.step(z, carry, cell_weights)
                    return keep_masked(m, new_state, carry), h

                final_state["lstm"][n], h_seq = scan(layer_scan, initial_state["lstm"][n], (z_seq, mask_t))
            hidden_seqs.append(h_seq)
        result["hidden"] = [batch_major(h) for h in hidden_seqs]
        result["final_state"] = final_state
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            units=self.units,
            num_layers=self.num_layers,
            clip=self.clip,
            forget_bias=self.forget_bias,
            fused_backward=self.fused_backward,
            conditioning=(
                keras.saving.serialize_keras_object(self.conditioning)
                if self.conditioning is not None
                else None
            ),
        )
        return config

