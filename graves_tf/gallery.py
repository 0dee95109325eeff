"""``python -m graves_tf.gallery``: runs the program :mod:`graves_tf.cli.gallery` (its flags and ``main`` are there).

It draws with :mod:`graves_tf.write` and :mod:`graves_tf.drawing`.
"""

if __name__ == "__main__":
    from graves_tf.cli.gallery import run

    run()
