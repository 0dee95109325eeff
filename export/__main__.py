"""``python -m export`` (in a checkout) and ``python -m graves_tf.export`` (installed: the wheel puts
``export/`` at ``graves_tf/export/``): runs the program :mod:`graves_tf.cli.export` (its flags and
``main`` are there; also the console script ``graves-tf-export``).
"""

if __name__ == "__main__":
    from graves_tf.cli.export import run

    run()
