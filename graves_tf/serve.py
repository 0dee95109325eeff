r"""A handwriting page in the browser, on a local server that speaks TF Serving's REST API.


The program (its flags and ``main``) is :mod:`graves_tf.cli.serve`; ``python -m graves_tf.serve`` runs it.
    pip install -e ".[serve]"
    python -m graves_tf.serve                                  # the shipped model, http://127.0.0.1:8080/
    python -m graves_tf.serve --model_dir=runs/synthesis       # a training run
    python -m graves_tf.serve --saved_model=exported/synthesis # an export (a version folder or their parent)

The page (``graves_tf/web/``: plain HTML, JavaScript and CSS) writes typed text
in a chosen style (the shipped styles, or a line the user writes with mouse,
pen or finger), stroke by stroke, wraps long text into a page in one style,
and saves SVG, PNG and the user's hand as a ``write --prime_strokes`` file.

The model is served as a SavedModel (a run or the shipped model is exported
into a temporary folder at start-up, as ``python -m export`` does), under TF
Serving's routes, request forms and JSON answers:

* ``GET /v1/models/synthesis[/versions/N]``: the version status;
* ``GET /v1/models/synthesis[/versions/N]/metadata``: the signature defs;
* ``POST /v1/models/synthesis[/versions/N]:predict`` with ``signature_name``
  and ``inputs`` (columnar: ``{"outputs": ...}`` back) or ``instances`` (rows:
  ``{"predictions": [...]}`` back); errors are ``{"error": "..."}``.

So the page works unchanged against ``tensorflow/serving`` serving the same
export (its ``?server=URL``, or the server field). One difference: the
generation signatures take ``seed`` and ``max_steps`` as scalars, which TF
Serving cannot fill from rows; here a row request may give them in every
instance, all equal, and they are fed once.

Safety: binds 127.0.0.1 unless --host says otherwise; text length, batch,
``max_steps``, pen-trace length and request body size are capped; no path
comes from the client; no cross-origin requests unless --cors_origin; at
most --workers requests run and --max_queue wait, later ones are told
"busy" (503).
"""

import asyncio
import base64
import json
import os
import pathlib
import re
import socket
import tempfile

WEB_DIR = pathlib.Path(__file__).parent / "web"
INFO_FILE = "assets.extra/graves_tf.json"  # graves_tf.export.saved_model.INFO_FILE
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
LENGTH_INPUTS = ("max_steps", "num_steps")  # step counts, capped by limits.max_steps
TEXT_INPUTS = ("text", "prime_text")  # checked against the model's characters


class Limits:
    def __init__(self, max_text_length=120, max_batch=16, max_steps=6000, max_prime_points=6000,
                 max_body_bytes=4 << 20, workers=1, max_queue=8):
        self.max_text_length = max_text_length
        self.max_batch = max_batch
        self.max_steps = max_steps
        self.max_prime_points = max_prime_points
        self.max_body_bytes = max_body_bytes
        self.workers = workers
        self.max_queue = max_queue

    def as_dict(self):
        return dict(vars(self))


class RequestError(Exception):
    """A request the server refuses: ``status`` (400 bad request, 404 not found, 503 busy) and a message."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


def find_version(path):
    """``(version_folder, version)`` of a SavedModel folder, or the newest numbered version inside one."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists():
        return path, path.name if path.name.isdigit() else "1"
    versions = sorted((int(p.name), p) for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists())
    if not versions:
        raise FileNotFoundError(f"{path} holds no SavedModel (saved_model.pb), nor numbered versions of one")
    return versions[-1][1], str(versions[-1][0])


def export_to_temp(model_dir=None, checkpoint="best"):
    """Exports a training run (or the shipped model) into a new temporary folder: ``(folder, base)``."""
    from graves_tf.export.saved_model import export_run
    from graves_tf import write

    model, config, where = write.load_model(model_dir, checkpoint)
    if config["spec"]["model"] != "handwriting_synthesizer":
        raise ValueError(f"{where} holds a {config['spec']['model']}, not a handwriting synthesizer")
    base = tempfile.mkdtemp(prefix="graves_tf_serve_")
    export_run(model, config, os.path.join(base, "1"))
    return os.path.join(base, "1"), base


def _json_of_proto(message):
    from google.protobuf import json_format

    try:  # protobuf >= 5.26
        return json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    except TypeError:
        return json_format.MessageToDict(message, preserving_proto_field_name=True, including_default_value_fields=True)


def graph_error_message(message):
    """The words of a graph's InvalidArgumentError, without the node names and traces around them."""
    if "assertion failed:" in message:
        message = message[message.index("assertion failed:"):]
    message = re.split(r"\n\s*\[\[|\s*\[Op:", message)[0]
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    message = paragraphs[-1] if paragraphs else message
    if message.startswith("assertion failed:"):  # "[words] [more words]" -> "words more words"
        message = re.sub(r"\]\s*\[", " ", message[len("assertion failed:"):]).strip(" []")
    return re.sub(r"\s+", " ", message).strip()


def _shape_text(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _walk_strings(value, name):
    """Nested lists of str (or {"b64": ...}) -> the same nesting of bytes; refuses anything else."""
    if isinstance(value, list):
        return [_walk_strings(v, name) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise RequestError(f"input '{name}': {value['b64'][:20]!r} is not base64") from None
    raise RequestError(f"input '{name}' must be strings, got {json.dumps(value)[:40]}")


def _leaves(value):
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _array(value, spec, name):
    """A JSON value -> a numpy array of the spec's dtype, or a RequestError naming what is wrong."""
    import numpy as np

    if spec.dtype.name == "string":
        nested = _walk_strings(value, name)
        try:
            array = np.array(nested, dtype=object)
        except ValueError:
            raise RequestError(f"input '{name}' is ragged: every list at one depth must have the same length") from None
        if array.dtype != object or any(not isinstance(v, bytes) for v in array.reshape(-1)):
            raise RequestError(f"input '{name}' is ragged: every list at one depth must have the same length")
        return array
    for leaf in _leaves(value):
        if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
            shown = "true/false" if isinstance(leaf, bool) else json.dumps(leaf)[:40]
            raise RequestError(f"input '{name}' must be numbers ({spec.dtype.name}), got {shown}")
        if isinstance(leaf, int) and abs(leaf) >= 2**63:
            raise RequestError(f"input '{name}' is out of the range of {spec.dtype.name}")
    try:
        array = np.array(value)
    except ValueError:
        raise RequestError(f"input '{name}' is ragged: every list at one depth must have the same length") from None
    if array.dtype == object:
        raise RequestError(f"input '{name}' is ragged: every list at one depth must have the same length")
    if array.dtype.kind not in "iuf":
        raise RequestError(f"input '{name}' must be numbers ({spec.dtype.name}), got {json.dumps(value)[:40]}")
    if array.size and not np.all(np.isfinite(array)):
        raise RequestError(f"input '{name}' holds a number that is not finite")
    target = spec.dtype.as_numpy_dtype
    if spec.dtype.is_integer:
        if array.dtype.kind == "f" and array.size and not np.all(array == np.round(array)):
            raise RequestError(f"input '{name}' must be integers ({spec.dtype.name}), got a fraction")
        info = np.iinfo(target)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise RequestError(f"input '{name}' is out of the range of {spec.dtype.name}")
    return array.astype(target)


class SavedModelServer:
    """A SavedModel's signatures behind TF Serving's REST semantics (no HTTP here: see :func:`make_app`)."""

    def __init__(self, saved_model, model_name="synthesis", limits=None):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.folder, self.version = find_version(saved_model)
        self.model_name = model_name
        self.limits = limits or Limits()
        self.loaded = tf.saved_model.load(str(self.folder))
        self.signatures = dict(self.loaded.signatures)
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((self.folder / "saved_model.pb").read_bytes())
        self.signature_defs = proto.meta_graphs[0].signature_def
        info_path = self.folder / INFO_FILE
        self.info = json.loads(info_path.read_text()) if info_path.exists() else None

    # -- the three routes -------------------------------------------------------------------------------------

    def check_model(self, name, version=None):
        if name != self.model_name:
            raise RequestError(f"Servable not found for request: Latest({name})", 404)
        if version is not None and version != self.version:
            raise RequestError(f"Servable not found for request: Specific({name}, {version})", 404)

    def status(self):
        return {"model_version_status": [
            {"version": self.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]}

    def metadata(self):
        from tensorflow.core.protobuf import meta_graph_pb2

        signature_map = meta_graph_pb2.MetaGraphDef()
        for key, value in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        defs = _json_of_proto(signature_map).get("signature_def", {})
        return {
            "model_spec": {"name": self.model_name, "signature_name": "", "version": self.version},
            "metadata": {"signature_def": {"signature_def": defs}},
        }

    def predict(self, body):
        """A parsed JSON request body -> the JSON answer (a dict), as TF Serving answers ``:predict``."""
        import tensorflow as tf

        function, signature, tensors, rows = self.parse(body)
        try:
            outputs = function(**{k: tf.constant(v, dtype=signature[k].dtype) for k, v in tensors.items()})
        except tf.errors.InvalidArgumentError as error:  # the graph's own checks of its inputs
            raise RequestError(graph_error_message(error.message)) from None
        outputs = {k: v.numpy() for k, v in outputs.items()}
        return self.answer(outputs, rows)

    def warm_up(self):
        """Runs each generation signature once on a tiny input, so that the first visitor does not wait for it."""
        calls = {
            "serving_default": {"text": ["a"], "bias": [0.5], "seed": 0, "max_steps": 2},
            "generate_primed": {"text": ["a"], "bias": [0.5], "seed": 0, "max_steps": 2,
                                "prime_strokes": [[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], "prime_lengths": [2],
                                "prime_text": ["a"]},
        }
        for name, inputs in calls.items():
            if name in self.signatures and set(self.signatures[name].structured_input_signature[1]) == set(inputs):
                self.predict({"signature_name": name, "inputs": inputs})

    # -- requests -----------------------------------------------------------------------------------------

    def parse(self, body):
        """Checks a request body: ``(function, input specs, {name: numpy array}, row_form)``."""
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        name = body.get("signature_name", "serving_default")
        if not isinstance(name, str):
            raise RequestError("'signature_name' must be a string")
        if name not in self.signatures:
            raise RequestError(
                f'Serving signature name: "{name}" not found in signature def; '
                f"this model has {', '.join(sorted(self.signatures))}"
            )
        function = self.signatures[name]
        signature = function.structured_input_signature[1]
        if ("inputs" in body) == ("instances" in body):
            raise RequestError("give the inputs either as 'instances' (a list of rows) or as 'inputs' (columns), not both"
                               if "inputs" in body else "the request has neither 'instances' nor 'inputs'")
        rows = "instances" in body
        values = self._from_rows(body["instances"], signature, name) if rows else self._from_columns(body["inputs"], signature)
        missing = [k for k in signature if k not in values]
        if missing:
            raise RequestError(
                f"signature '{name}' needs input(s) {', '.join(missing)} (its inputs: {', '.join(signature)})"
            )
        extra = [k for k in values if k not in signature]
        if extra:
            raise RequestError(
                f"input tensor alias not found in signature: {', '.join(extra)}; "
                f"signature '{name}' takes {', '.join(signature)}"
            )
        tensors = {}
        for key, spec in signature.items():
            value = values[key]
            array = value if hasattr(value, "dtype") and not isinstance(value, list) else _array(value, spec, key)
            if array.ndim != len(spec.shape) or any(
                d is not None and d != n for d, n in zip(spec.shape.as_list(), array.shape)
            ):
                raise RequestError(
                    f"input '{key}' of signature '{name}' must have shape {_shape_text(spec.shape.as_list())} "
                    f"({spec.dtype.name}), got shape {_shape_text(array.shape)}"
                )
            tensors[key] = array
        self._check_limits(name, signature, tensors)
        return function, signature, tensors, rows

    def _from_columns(self, inputs, signature):
        if isinstance(inputs, dict):
            return inputs
        if len(signature) == 1:
            return {next(iter(signature)): inputs}
        raise RequestError(f"'inputs' must be an object of named inputs ({', '.join(signature)})")

    def _from_rows(self, instances, signature, name):
        """TF Serving's row form: every instance holds one batch row of every input."""
        import numpy as np

        if not isinstance(instances, list) or not instances:
            raise RequestError("'instances' must be a non-empty list of rows")
        if all(isinstance(i, dict) and "b64" not in i for i in instances):
            keys = list(instances[0])
            if any(list(i) != keys and set(i) != set(keys) for i in instances):
                raise RequestError("every instance must name the same inputs")
        elif len(signature) == 1:
            instances = [{next(iter(signature)): i} for i in instances]
            keys = list(signature)
        else:
            raise RequestError(f"each instance must be an object of named inputs ({', '.join(signature)})")
        values = {}
        for key in keys:
            column = [i[key] for i in instances]
            spec = signature.get(key)
            if spec is None:
                values[key] = column
                continue
            if len(spec.shape) == 0:  # a scalar of the whole batch: TF Serving cannot take it from rows
                arrays = [_array(v, spec, key) for v in column]
                if any(a.shape != () for a in arrays):
                    raise RequestError(f"input '{key}' of signature '{name}' is one value (shape []) per request")
                if any(a != arrays[0] for a in arrays[1:]):
                    raise RequestError(
                        f"input '{key}' of signature '{name}' is one value for the whole batch (shape []); "
                        "the instances give different values"
                    )
                values[key] = arrays[0]
                continue
            arrays = [_array(v, type(spec)(spec.shape[1:], spec.dtype), key) for v in column]
            if len({a.shape for a in arrays}) > 1:
                raise RequestError(
                    f"input '{key}' has shapes {', '.join(sorted({_shape_text(a.shape) for a in arrays}))} in "
                    "different instances; every instance must give it the same shape (pad to the longest)"
                )
            values[key] = np.stack(arrays)
        return values

    def _check_limits(self, name, signature, tensors):
        limits = self.limits
        batches = {k: v.shape[0] for k, v in tensors.items() if v.ndim and signature[k].shape[0] is None}
        if len(set(batches.values())) > 1:
            raise RequestError(
                "the inputs disagree on the batch size: " + ", ".join(f"{k} has {n}" for k, n in batches.items())
            )
        batch = next(iter(batches.values()), 1)
        if batch > limits.max_batch:
            raise RequestError(f"a request writes at most {limits.max_batch} texts at once, this one {batch}")
        if batch == 0:
            raise RequestError("the request holds no texts (batch of 0)")
        for key, array in tensors.items():
            if key in LENGTH_INPUTS:
                steps = int(array.max()) if array.size else 0
                if steps < 1 or steps > limits.max_steps:
                    raise RequestError(f"'{key}' must be from 1 to {limits.max_steps}, got {steps}")
            elif array.dtype == object:
                for item in array.reshape(-1):
                    try:
                        text = item.decode("utf-8")
                    except UnicodeDecodeError:
                        raise RequestError(f"input '{key}' is not UTF-8 text") from None
                    if len(text) > limits.max_text_length:
                        raise RequestError(
                            f"'{key}' is {len(text)} characters long; the server writes at most "
                            f"{limits.max_text_length} per text (split long text into lines)"
                        )
                    if key in TEXT_INPUTS and self.info and "characters" in self.info:
                        self.check_characters(text)
            elif key.endswith("lengths") and key.replace("lengths", "strokes") in tensors:
                points = tensors[key.replace("lengths", "strokes")].shape[1]
                if array.size and (array.min() < 0 or array.max() > points):
                    raise RequestError(f"'{key}' must be from 0 to {points}, the pen points given")
            elif array.ndim == 3 and array.shape[1] > limits.max_prime_points:
                raise RequestError(
                    f"'{key}' has {array.shape[1]} pen points; the server takes at most {limits.max_prime_points}"
                )

    def check_characters(self, text):
        known = set(self.info["characters"])
        unknown = [c for c in dict.fromkeys(text) if c not in known]
        if unknown:
            raise RequestError(
                f"cannot write {''.join(unknown)!r}: the model knows only the characters of IAM-OnDB, "
                f"{self.info['characters']!r}"
            )

    # -- answers ------------------------------------------------------------------------------------------

    @staticmethod
    def _jsonable(array):
        if array.dtype == object:
            def text(b):
                try:
                    return b.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(b).decode("ascii")}
            flat = [text(b) for b in array.reshape(-1)]
            import numpy as np

            return np.array(flat, dtype=object).reshape(array.shape).tolist()
        return array.tolist()

    def answer(self, outputs, rows):
        if not rows:
            if len(outputs) == 1:
                return {"outputs": self._jsonable(next(iter(outputs.values())))}
            return {"outputs": {k: self._jsonable(v) for k, v in outputs.items()}}
        sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise RequestError("the outputs do not share a batch size, so they cannot be rows; use 'inputs'")
        (size,) = sizes
        if len(outputs) == 1:
            return {"predictions": self._jsonable(next(iter(outputs.values())))}
        columns = {k: self._jsonable(v) for k, v in outputs.items()}
        return {"predictions": [{k: columns[k][i] for k in columns} for i in range(size)]}

    # -- the page -----------------------------------------------------------------------------------------

    def page_config(self):
        """What the page needs to know: the model's characters, statistics and rate, the server's caps, the styles."""
        info = self.info or {}
        return {"model_name": self.model_name, "version": self.version, "limits": self.limits.as_dict(),
                "characters": info.get("characters"), "offset_std": info.get("offset_std"),
                "point_stride": info.get("point_stride", 1),
                "steps_per_character": info.get("steps_per_character", 40)}


def shipped_styles():
    """The shipped styles for the page (strokes in whiteboard units at the data's rate), or [] without them."""
    from graves_tf import pretrained

    try:
        styles = pretrained.list_styles()
    except pretrained.PretrainedNotFound:
        return []
    return [{k: s[k] for k in ("name", "line_id", "text", "description", "strokes")} for s in styles]


def page_defaults(styles):
    """The page's starting bias, width and style: ``python -m graves_tf.write``'s, chosen by measurement
    (docs/handwriting.md); the style only where it is among ``styles`` (else the model's own hand)."""
    from graves_tf import write

    names = {s["name"] for s in styles or ()}
    return {"bias": write.DEFAULT_BIAS, "width": write.DEFAULT_WIDTH,
            "style": write.DEFAULT_STYLE if write.DEFAULT_STYLE in names else None}


class _BodyTooLarge(Exception):
    pass


def make_app(server, cors_origins=(), styles=None, allowed_hosts=None):
    """The Starlette application: the page, its config and styles, and the REST API of ``server``.

    ``cors_origins``: other pages' origins allowed to call the API; ``allowed_hosts``: the Host
    names answered (None: any; the command line gives loopback names when it listens on loopback,
    so a web page cannot reach the server through a DNS name of its own).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    limits = server.limits
    styles = shipped_styles() if styles is None else styles
    running = asyncio.Semaphore(limits.workers)
    state = {"pending": 0}
    model_route = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>/metadata|:predict)?$")

    def error(message, status=400, headers=None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def read_body(request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise _BodyTooLarge(int(declared))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise _BodyTooLarge(size)
            chunks.append(chunk)
        return b"".join(chunks)

    def parse_json(raw):
        def refuse(constant):
            raise ValueError(f"{constant} is not a JSON number")

        try:
            return json.loads(raw.decode("utf-8"), parse_constant=refuse)
        except (UnicodeDecodeError, ValueError) as bad:
            raise RequestError(f"the request body is not JSON: {bad}") from None

    async def models(request):
        match = model_route.match(request.path_params["path"])
        if not match:
            return error(f"Malformed request: {request.method} {request.url.path}", 404)
        name, version, rest = match["name"], match["version"], match["rest"]
        try:
            server.check_model(name, version)
            if request.method == "GET" and rest is None:
                return JSONResponse(server.status())
            if request.method == "GET" and rest == "/metadata":
                return JSONResponse(server.metadata())
            if request.method != "POST" or rest != ":predict":
                return error(f"Malformed request: {request.method} {request.url.path}", 404)
            origin = request.headers.get("origin")
            if origin and origin not in cors_origins and origin != f"{request.url.scheme}://{request.headers.get('host')}":
                return error(f"requests from the page of {origin} are refused: this server answers its own page only "
                             f"(start it with --cors_origin={origin} to allow that page)", 403)
            try:
                raw = await read_body(request)
            except _BodyTooLarge as big:
                return error(f"the request body ({big.args[0]} bytes) is over this server's limit of "
                             f"{limits.max_body_bytes} bytes")
            body = parse_json(raw)
            if state["pending"] >= limits.workers + limits.max_queue:
                return error(
                    f"busy: {state['pending']} requests are being written or waiting; try again in a moment",
                    503, {"Retry-After": "1"},
                )
            state["pending"] += 1
            try:
                async with running:  # sampled, and written out as JSON, off the event loop
                    answer = await run_in_threadpool(lambda: json.dumps(server.predict(body), separators=(",", ":")))
            finally:
                state["pending"] -= 1
            return Response(answer, media_type="application/json")
        except RequestError as refused:
            return error(refused.message, refused.status)
        except Exception as failure:  # noqa: BLE001  (answered in words, and the server keeps serving)
            return error(f"{type(failure).__name__}: {failure}", 500)

    async def index(request):
        return FileResponse(WEB_DIR / "index.html", headers=_PAGE_HEADERS)

    async def page_config(request):
        return JSONResponse({**server.page_config(), "defaults": page_defaults(styles)})

    async def page_styles(request):
        return JSONResponse({"styles": styles})

    cors_origins = list(cors_origins)
    middleware = []
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    if cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                     allow_headers=["Content-Type"]))
    routes = [
        Route("/", index),
        Route("/page/config.json", page_config),
        Route("/page/styles.json", page_styles),
        Mount("/static", StaticFiles(directory=str(WEB_DIR)), name="static"),
        Route("/v1/models/{path:path}", models, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, middleware=middleware)


# The page loads only its own scripts and styles, and talks to this server or the one given in its field.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src *; img-src 'self' data: blob:; style-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


def listening_socket(host, port):
    """A bound, listening TCP socket (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


if __name__ == "__main__":
    from graves_tf.cli.serve import run

    run()
