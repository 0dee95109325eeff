"""``python -m graves_tf.train``: runs the program :mod:`graves_tf.cli.train` (its flags and ``main`` are there).

The training library it calls is :mod:`graves_tf.training`.
"""

if __name__ == "__main__":
    from graves_tf.cli.train import run

    run()
