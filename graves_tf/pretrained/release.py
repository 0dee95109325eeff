"""``python -m graves_tf.pretrained.release``: runs the program :mod:`graves_tf.cli.release` (its flags and ``main`` are there).

It writes the folders that :mod:`graves_tf.pretrained` reads.
"""

if __name__ == "__main__":
    from graves_tf.cli.release import run

    run()
