r"""A handwriting page in the browser, on a local server that speaks TF Serving's REST API.

    pip install -e ".[serve]"
    python -m graves_tf.serve                                  # the shipped model, http://127.0.0.1:8080/
    python -m graves_tf.serve --model_dir=runs/synthesis       # a training run
    python -m graves_tf.serve --saved_model=exported/synthesis # an export (a version folder or their parent)

(also ``graves-tf-serve``; the server it runs, its routes and its limits: :mod:`graves_tf.serve`.)

Safety: binds 127.0.0.1 unless --host says otherwise; text length, batch,
``max_steps``, pen-trace length and request body size are capped; no path
comes from the client; no cross-origin requests unless --cors_origin; at
most --workers requests run and --max_queue wait, later ones are told
"busy" (503).
"""

import os
import shutil
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import _program  # noqa: E402
from graves_tf.serve import (  # noqa: E402
    LOOPBACK_NAMES,
    Limits,
    RequestError,
    SavedModelServer,
    export_to_temp,
    listening_socket,
    make_app,
)

FLAGS = flags.FLAGS


def define_flags():
    """serve's flags: every experiment flag group (graves_tf.experiment: --model_dir, --checkpoint, ...) and its own."""
    experiment.define_flags()
    if "saved_model" in FLAGS:
        return
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (127.0.0.1: this machine only).")
    flags.DEFINE_integer("port", 8080, "Port to listen on (0: any free port).")
    flags.DEFINE_string(
        "saved_model", None,
        "Serve this SavedModel: a version folder, or a folder of numbered versions (the newest is served), "
        "instead of exporting --model_dir or the shipped model.",
    )
    flags.DEFINE_string("model_name", "synthesis", "The model's name in the REST routes (/v1/models/NAME).")
    flags.DEFINE_list("cors_origin", [], "Origins allowed to call the API from other pages (default: same origin only).")
    flags.DEFINE_integer("max_text_length", 120, "The most characters of one text (or prime_text) of a request.")
    flags.DEFINE_integer("max_batch", 16, "The most texts of one request.")
    flags.DEFINE_integer("max_steps_limit", 6000, "The most max_steps (pen points per line) a request may ask for.")
    flags.DEFINE_integer("max_prime_points", 6000, "The most pen points of a priming trace.")
    flags.DEFINE_integer("max_body_bytes", 4 << 20, "The largest request body, in bytes.")
    flags.DEFINE_integer("workers", 1, "Requests sampled at once (each one uses every core).")
    flags.DEFINE_integer("max_queue", 8, "Requests that may wait for a worker; past that the answer is 'busy'.")


define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        sys.exit('graves_tf.serve needs Starlette and uvicorn: pip install -e ".[serve]"')
    if FLAGS.saved_model and FLAGS.model_dir:
        sys.exit("give --saved_model or --model_dir, not both")
    logging.set_verbosity(logging.WARNING)  # not TensorFlow's notes on saving the export
    limits = Limits(FLAGS.max_text_length, FLAGS.max_batch, FLAGS.max_steps_limit, FLAGS.max_prime_points,
                    FLAGS.max_body_bytes, FLAGS.workers, FLAGS.max_queue)
    temporary = None
    try:
        if FLAGS.saved_model:
            folder = FLAGS.saved_model
        else:
            saved = experiment.read_run_spec(FLAGS.model_dir) if FLAGS.model_dir else None
            if saved is not None:  # model flags may repeat the run's configuration, not contradict it
                experiment.spec_of_run(saved, FLAGS.model_dir)
            folder, temporary = export_to_temp(FLAGS.model_dir, FLAGS.checkpoint)
        server = SavedModelServer(folder, FLAGS.model_name, limits)
        try:
            server.warm_up()
        except RequestError as refused:
            print(f"warning: {folder} refused a warm-up call ({refused.message})", file=sys.stderr)
        if "serving_default" not in server.signatures or server.info is None:
            print(f"warning: {folder} is not a graves_tf synthesis export; the page may not work with it",
                  file=sys.stderr)
        sock = listening_socket(FLAGS.host, FLAGS.port)
    except (FileNotFoundError, ValueError, OSError) as failure:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
        sys.exit(str(failure))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {server.folder} as model '{server.model_name}' version {server.version}", flush=True)
    print(f"open http://{shown}:{port}/  (REST API: http://{shown}:{port}/v1/models/{server.model_name})", flush=True)
    if FLAGS.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {FLAGS.host}: other machines can reach this server", file=sys.stderr)
    loopback = FLAGS.host in ("127.0.0.1", "localhost", "::1")
    application = make_app(server, FLAGS.cors_origin, allowed_hosts=LOOPBACK_NAMES if loopback else None)
    config = uvicorn.Config(application, log_level="warning", limit_concurrency=256, timeout_keep_alive=5)
    # uvicorn stops on SIGTERM and then raises it again: end by SystemExit, so the export is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def run():
    """The ``graves-tf-serve`` console script, ``python -m graves_tf.serve`` and ``python -m graves_tf.cli.serve``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
