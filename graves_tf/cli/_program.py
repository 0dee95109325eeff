"""How every program in ``graves_tf/cli/`` starts: ``absl.app.run`` of its ``main``, its help and usage
text the program's own however it was started (``python -m graves_tf.cli.NAME``, the thin
``python -m graves_tf.NAME`` modules, a ``graves-tf-NAME`` console script)."""

import sys

from absl import app, flags


def run(main, module_name, doc):
    """``app.run(main)``; ``--help`` lists ``module_name``'s key flags and prints ``doc`` as the usage.

    absl's ``--help`` shows the key flags of the module named by ``sys.argv[0]`` and the ``__doc__``
    of ``__main__``: where that is a thin module or a console script, both are taken from the program."""
    started_as = sys.argv[0] if sys.argv else ""
    if module_name != "__main__" and started_as:
        for flag in flags.FLAGS.get_key_flags_for_module(module_name):
            flags.FLAGS.register_key_flag_for_module(started_as, flag)
        main_module = sys.modules.get("__main__")
        if main_module is not None and doc:
            main_module.__doc__ = doc
    app.run(main)
