"""Helpers of the serve tests: a tiny synthesis export, and a real uvicorn server on a loopback port in a thread."""

import contextlib
import threading
import time

from graves_tf import experiment, run_dir
from run_folders import make_handwriting_run

TINY_SPEC = experiment.ModelSpec(
    model="handwriting_synthesizer", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3,
    num_window_gaussians=2, alphabet="full", point_stride=2,
)


def export_tiny(folder):
    """A tiny synthesis run of random weights, exported as ``python -m export`` would: the version folder."""
    from graves_tf.export.saved_model import export_run

    run = make_handwriting_run(folder / "run", TINY_SPEC, [8.0, 0.1], [40.0, 37.0], seed=0)
    model, config = run_dir.load_run(run)
    output = folder / "saved" / "1"
    export_run(model, config, str(output))
    return output


def export_shipped(folder):
    """The shipped 3x400 model, exported: the version folder."""
    from graves_tf.export.saved_model import export_run
    from graves_tf import pretrained

    model, config = pretrained.load_synthesizer()
    output = folder / "shipped" / "1"
    export_run(model, config, str(output))
    return output


@contextlib.contextmanager
def live_server(app, timeout=30.0):
    """Serves ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    import uvicorn

    from graves_tf import serve

    sock = serve.listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=256))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
