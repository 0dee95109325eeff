"""Optimizers: the RMSProp variant of Graves (2013), section 4.2, eqs. 38-45.

Graves trains every network of the paper with a form of RMSProp that divides
the gradient by an estimate of its recent *standard deviation* (running mean
of squares minus squared running mean, i.e. "centred" RMSProp) and adds
momentum. :func:`make_optimizer` maps the ``--optimizer`` flag to an
optimizer instance.
"""

import keras
from keras import ops

__all__ = ["GravesRMSprop", "make_optimizer", "OPTIMIZER_CHOICES", "parse_learning_rate_drops", "scheduled_learning_rate"]


@keras.saving.register_keras_serializable(package="graves_tf")
class GravesRMSprop(keras.optimizers.Optimizer):
    r"""RMSProp with momentum exactly as in Graves (2013), eqs. 38-45.

    For every weight :math:`w_i` with gradient :math:`\epsilon_i = \partial L / \partial w_i`
    the optimizer keeps three slots :math:`n_i, g_i, \Delta_i` (all initialised
    to zero) and, at each update, computes in this order::

        n_i     = aleph * n_i + (1 - aleph) * eps_i**2                     (38)
        g_i     = aleph * g_i + (1 - aleph) * eps_i                        (39)
        Delta_i = beth * Delta_i - gimel * eps_i / sqrt(n_i - g_i**2 + k)  (40)
        w_i     = w_i + Delta_i                                            (41)

    with the paper's parameters (the defaults here)::

        aleph = 0.95     (42)   -> ``decay``
        beth  = 0.9      (43)   -> ``momentum``
        gimel = 0.0001   (44)   -> ``learning_rate``
        k     = 0.0001   (45)   -> ``epsilon``

    Eq. 40 uses the *updated* ``n_i`` and ``g_i`` of eqs. 38-39. ``n_i - g_i**2``
    is a running estimate of the gradient's variance, so the step is the
    gradient divided by its recent standard deviation (regularised by ``k``).

    The learning rate may be a float or a Keras ``LearningRateSchedule``; it is
    held in a float32 variable by Keras and cast to each weight's dtype. The
    usual Keras optimizer keyword arguments (``clipnorm``, ``clipvalue``,
    ``global_clipnorm``, ``weight_decay``, ...) pass through to
    :class:`keras.optimizers.Optimizer`. The slot variables are tracked, so the
    optimizer state is saved and restored by ``tf.train.Checkpoint``.

    Args:
        learning_rate: gimel, eq. 44.
        decay: aleph, the discount of the running averages, eq. 42.
        momentum: beth, eq. 43.
        epsilon: k, added to the variance estimate, eq. 45.
        name: the optimizer's name.
        **kwargs: the other :class:`keras.optimizers.Optimizer` arguments.
    """

    def __init__(
        self,
        learning_rate=1e-4,
        decay=0.95,
        momentum=0.9,
        epsilon=1e-4,
        name="graves_rmsprop",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._mean_squares = []  # n_i, eq. 38
        self._mean_gradients = []  # g_i, eq. 39
        self._deltas = []  # Delta_i, eq. 40
        for variable in var_list:
            self._mean_squares.append(
                self.add_variable_from_reference(variable, name="mean_square")
            )
            self._mean_gradients.append(
                self.add_variable_from_reference(variable, name="mean_gradient")
            )
            self._deltas.append(self.add_variable_from_reference(variable, name="delta"))

    def update_step(self, gradient, variable, learning_rate):
        """Eqs. 38-41 for one variable."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        eps = ops.cast(gradient, dtype)
        # convert_to_tensor with the dtype (not cast, which goes through float32 first)
        # keeps the constants exact for float64 weights.
        aleph = ops.convert_to_tensor(self.decay, dtype=dtype)
        one_minus_aleph = ops.convert_to_tensor(1.0 - self.decay, dtype=dtype)
        beth = ops.convert_to_tensor(self.momentum, dtype=dtype)
        k = ops.convert_to_tensor(self.epsilon, dtype=dtype)
        index = self._get_variable_index(variable)
        n = self._mean_squares[index]
        g = self._mean_gradients[index]
        delta = self._deltas[index]

        self.assign(n, ops.add(ops.multiply(aleph, n), ops.multiply(one_minus_aleph, ops.square(eps))))  # (38)
        self.assign(g, ops.add(ops.multiply(aleph, g), ops.multiply(one_minus_aleph, eps)))  # (39)
        step = ops.divide(ops.multiply(lr, eps), ops.sqrt(ops.add(ops.subtract(n, ops.square(g)), k)))
        self.assign(delta, ops.subtract(ops.multiply(beth, delta), step))  # (40)
        self.assign_add(variable, delta)  # (41)

    def get_config(self):
        config = super().get_config()
        config.update({"decay": self.decay, "momentum": self.momentum, "epsilon": self.epsilon})
        return config


OPTIMIZER_CHOICES = ("rmsprop_graves", "sgd", "adam")


def parse_learning_rate_drops(drops):
    """``--learning_rate_drops`` as ``((updates, rate), ...)``.

    Args:
        drops: ``"UPDATES:RATE"`` strings, e.g. ``("4332:5e-4", "4773:2.5e-4")``:
            once ``UPDATES`` updates are done, every later update uses ``RATE``.

    Raises:
        ValueError: for a malformed drop, updates not increasing, or a rate <= 0.
    """
    parsed = []
    for drop in drops:
        try:
            updates, rate = drop.split(":")
            updates, rate = int(updates), float(rate)
        except ValueError:
            raise ValueError(f"--learning_rate_drops: {drop!r} is not UPDATES:RATE (e.g. 4332:5e-4)") from None
        if updates <= (parsed[-1][0] if parsed else 0):
            raise ValueError(f"--learning_rate_drops: updates must be positive and increasing, got {list(drops)}")
        if rate <= 0:
            raise ValueError(f"--learning_rate_drops: rates must be positive, got {drop!r}")
        parsed.append((updates, rate))
    return tuple(parsed)


def scheduled_learning_rate(learning_rate, drops, updates_done):
    """The rate of the next update after ``updates_done``: ``learning_rate`` until the first drop.

    ``drops`` is :func:`parse_learning_rate_drops`'s result. The training loop
    assigns this rate to the optimizer's own learning rate variable rather than
    giving Keras a schedule: an optimizer built with a schedule has no such
    variable, so its checkpoints would not line up with those of a run that
    started at a constant rate and is resumed with drops.
    """
    rate = learning_rate
    for updates, dropped in drops:
        if updates_done >= updates:
            rate = dropped
    return rate


def make_optimizer(name, learning_rate, momentum):
    """Builds the optimizer named by the ``--optimizer`` flag.

    Args:
        name: ``"rmsprop_graves"`` (:class:`GravesRMSprop`, the paper's),
            ``"sgd"`` (``keras.optimizers.SGD`` with momentum) or ``"adam"``
            (``keras.optimizers.Adam``; ``momentum`` is ignored).
        learning_rate: the learning rate (a float or a Keras schedule).
        momentum: the momentum (beth of eq. 43 for ``rmsprop_graves``).

    Raises:
        ValueError: for any other name.
    """
    if name == "rmsprop_graves":
        return GravesRMSprop(learning_rate=learning_rate, momentum=momentum)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_CHOICES)}")
