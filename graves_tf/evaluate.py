"""``python -m graves_tf.evaluate``: runs the program :mod:`graves_tf.cli.evaluate` (its flags and ``main`` are there).

The evaluation library it calls is :mod:`graves_tf.evaluation`.
"""

if __name__ == "__main__":
    from graves_tf.cli.evaluate import run

    run()
