"""The command-line programs: each module here defines its absl flags (from the flag groups of
:mod:`graves_tf.experiment` and its own) and ``main``, and calls the library that does the work.

* ``write``: ``python -m graves_tf.write``, calls :mod:`graves_tf.write`;
* ``train``: ``python -m graves_tf.train``, calls :mod:`graves_tf.training`;
* ``evaluate``: ``python -m graves_tf.evaluate``, calls :mod:`graves_tf.evaluation`;
* ``export``: ``python -m export`` in a checkout, ``python -m graves_tf.export`` anywhere, calls
  :mod:`graves_tf.export` (the checkout's ``export/``);
* ``serve``: ``python -m graves_tf.serve``, calls :mod:`graves_tf.serve`;
* ``gallery``: ``python -m graves_tf.gallery``, calls :mod:`graves_tf.write` and :mod:`graves_tf.drawing`;
* ``average_checkpoints``: ``python -m graves_tf.average_checkpoints``, calls
  :mod:`graves_tf.average_checkpoints`;
* ``release``: ``python -m graves_tf.pretrained.release``, writes what :mod:`graves_tf.pretrained` reads.

Each also runs as ``python -m graves_tf.cli.NAME`` and, installed, as the console script
``graves-tf-NAME`` (``graves-tf-average-checkpoints`` for ``average_checkpoints``). The
``python -m graves_tf.NAME`` modules are thin: they only call the program's ``run()``.
Importing a program defines its flags; importing the library defines none.
"""
