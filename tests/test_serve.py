"""`python -m graves_tf.serve` without a browser: TF Serving's REST routes, request forms and answers, refusals,
the page's files, and a storm of concurrent requests against a real uvicorn server on a loopback port."""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import tensorflow as tf  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from graves_tf import serve, write  # noqa: E402
from serve_helpers import export_tiny, live_server  # noqa: E402

PREDICT = "/v1/models/synthesis:predict"
PRIME = [[0.0, 0.0, 0.0], [30.0, -10.0, 0.0], [25.0, 12.0, 0.0], [20.0, 5.0, 1.0], [40.0, 0.0, 0.0], [10.0, 30.0, 1.0]]
REQUESTS = {  # one columnar request of every exported synthesis signature
    "serving_default": {"text": ["hello there", "ab"], "bias": [0.5, 1.0], "seed": 7, "max_steps": 60},
    "generate_primed": {"text": ["more", "of it"], "bias": [0.5, 0.5], "seed": 3, "max_steps": 50,
                        "prime_strokes": [PRIME, PRIME], "prime_lengths": [6, 6], "prime_text": ["hi", "hi"]},
    "log_prob": {"strokes": [PRIME, PRIME], "lengths": [6, 4], "text": ["hi", "ho"]},
}
DTYPES = {"bias": tf.float32, "seed": tf.int64, "max_steps": tf.int32, "prime_strokes": tf.float32,
          "prime_lengths": tf.int32, "strokes": tf.float32, "lengths": tf.int32}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(exported):
    limits = serve.Limits(max_text_length=60, max_batch=4, max_steps=500, max_prime_points=200,
                          max_body_bytes=100_000, workers=1, max_queue=2)
    return serve.SavedModelServer(exported, "synthesis", limits)


@pytest.fixture(scope="module")
def client(server):
    with TestClient(serve.make_app(server, styles=[])) as test_client:
        yield test_client


def rows_of(inputs, batch):
    """The row ('instances') form of a columnar request: batched inputs split, scalars repeated."""
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in inputs.items()} for i in range(batch)]


@pytest.fixture(scope="module")
def loaded(exported):
    """The SavedModel loaded by TensorFlow itself, apart from the server's copy."""
    return tf.saved_model.load(str(exported))


def direct(loaded, signature, inputs):
    """The same call on the SavedModel, no server between."""
    out = loaded.signatures[signature](**{k: tf.constant(v, DTYPES.get(k, tf.string)) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


# -- the routes, as TF Serving answers them ---------------------------------------------------------------

def test_the_status_route_answers_as_tf_serving(client):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.get("/v1/models/synthesis").json() == expected
    assert client.get("/v1/models/synthesis/versions/1").json() == expected
    missing = client.get("/v1/models/nonesuch")
    assert missing.status_code == 404 and "nonesuch" in missing.json()["error"]
    assert client.get("/v1/models/synthesis/versions/7").status_code == 404


def test_the_metadata_route_gives_the_signature_defs_in_tf_servings_json(client):
    answer = client.get("/v1/models/synthesis/metadata").json()
    assert answer["model_spec"] == {"name": "synthesis", "signature_name": "", "version": "1"}
    defs = answer["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "generate_primed", "log_prob"} <= set(defs)
    default = defs["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert set(default["inputs"]) == {"text", "bias", "seed", "max_steps"}
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert default["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert default["inputs"]["seed"] == {"dtype": "DT_INT64", "tensor_shape": {"dim": [], "unknown_rank": False},
                                         "name": "serving_default_seed:0"}
    strokes = defs["generate_primed"]["outputs"]["strokes"]
    assert strokes["dtype"] == "DT_FLOAT" and [d["size"] for d in strokes["tensor_shape"]["dim"]] == ["-1", "-1", "3"]
    assert client.get("/v1/models/synthesis/versions/1/metadata").json() == answer


@pytest.mark.parametrize("signature", sorted(REQUESTS))
def test_a_columnar_request_gives_what_the_saved_model_gives_called_directly(client, loaded, signature):
    inputs = REQUESTS[signature]
    response = client.post(PREDICT, json={"signature_name": signature, "inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    expected = direct(loaded, signature, inputs)
    if len(expected) == 1:  # one output: TF Serving answers its value bare
        outputs = {next(iter(expected)): outputs}
    assert set(outputs) == set(expected)
    for key, value in expected.items():
        got = np.asarray(outputs[key], value.dtype)
        assert got.shape == value.shape and np.array_equal(got, value), key
    if "lengths" in expected:
        assert expected["lengths"].min() > 0  # the comparison covered real strokes


@pytest.mark.parametrize("signature", sorted(REQUESTS))
def test_a_row_request_gives_one_prediction_per_instance(client, signature):
    inputs = REQUESTS[signature]
    columns = client.post(PREDICT, json={"signature_name": signature, "inputs": inputs}).json()["outputs"]
    batch = len(inputs["text"])
    response = client.post(PREDICT, json={"signature_name": signature, "instances": rows_of(inputs, batch)})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == batch
    if signature == "log_prob":  # one output: each prediction is its value (TF Serving's row answer)
        assert predictions == columns
    else:  # several outputs: each prediction is an object of them
        assert predictions == [{k: columns[k][i] for k in columns} for i in range(batch)]


def test_the_default_signature_is_serving_default(client):
    inputs = REQUESTS["serving_default"]
    named = client.post(PREDICT, json={"signature_name": "serving_default", "inputs": inputs}).json()
    assert client.post(PREDICT, json={"inputs": inputs}).json() == named
    assert client.post("/v1/models/synthesis/versions/1:predict", json={"inputs": inputs}).json() == named


# -- refusals -----------------------------------------------------------------------------------------

def _with(signature="serving_default", form="inputs", **changes):
    inputs = {k: v for k, v in {**REQUESTS[signature], **changes}.items() if v is not None}
    return {"signature_name": signature, form: inputs}


BAD = {  # name: (request body, words the answer must hold)
    "unknown signature": ({"signature_name": "nonesuch", "inputs": REQUESTS["serving_default"]}, "nonesuch"),
    "missing input": (_with(seed=None), "seed"),
    "unknown input": (_with(colour=["red"]), "colour"),
    "numbers as text": (_with(text=[1, 2]), "must be strings"),
    "text as numbers": (_with(bias=["high", "low"]), "must be numbers"),
    "true as a number": (_with(bias=[True, False]), "must be numbers"),
    "fractional seed": (_with(seed=1.5), "integers"),
    "seed beyond int64": (_with(seed=2**70), "range"),
    "a list for a scalar": (_with(max_steps=[60, 60]), "shape []"),
    "ragged strokes": (_with("generate_primed", prime_strokes=[PRIME, PRIME[:3]]), "ragged"),
    "points of two values": (_with("log_prob", strokes=[[p[:2] for p in PRIME]] * 2), "shape [-1, -1, 3]"),
    "batch sizes disagree": (_with(bias=[0.5]), "batch size"),
    "lengths beyond the strokes": (_with("log_prob", lengths=[6, 9]), "lengths"),
    "neither form": ({"signature_name": "serving_default"}, "neither"),
    "both forms": ({"inputs": REQUESTS["serving_default"], "instances": [{}]}, "not both"),
    "rows disagree on a scalar": (
        {"instances": [{"text": "a", "bias": 0.5, "seed": 1, "max_steps": 20},
                       {"text": "b", "bias": 0.5, "seed": 2, "max_steps": 20}]}, "different values"),
    "unknown character": (_with(text=["price: 5 €", "ab"]), "€"),
    "too long a text": (_with(text=["a" * 61, "ab"]), "at most 60"),
    "too large a batch": (_with(text=["a"] * 5, bias=[0.5] * 5), "at most 4"),
    "too many steps": (_with(max_steps=501), "500"),
    "no steps": (_with(max_steps=0), "max_steps"),
    "too long a prime": (_with("generate_primed", prime_strokes=[PRIME * 40] * 2, prime_lengths=[240, 240]), "200"),
    "not an object": ([1, 2, 3], "JSON object"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_request_gets_400_with_a_message_and_the_server_keeps_serving(client, name):
    body, words = BAD[name]
    response = client.post(PREDICT, json=body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"], response.json()["error"]
    good = client.post(PREDICT, json={"inputs": REQUESTS["serving_default"]})
    assert good.status_code == 200 and good.json()["outputs"]["lengths"]


@pytest.mark.parametrize("raw, words", [
    (b'{"inputs": ', "not JSON"),
    (b'{"inputs": {"text": ["a"], "bias": [NaN], "seed": 0, "max_steps": 5}}', "NaN"),
    (b"\xff\xfe", "not JSON"),
])
def test_a_body_that_is_not_json_gets_400(client, raw, words):
    response = client.post(PREDICT, content=raw)
    assert response.status_code == 400 and words in response.json()["error"]


def test_an_oversize_body_gets_400_and_is_not_read(client):
    body = json.dumps(_with(text=["ab", "cd"], padding="x" * 150_000))
    response = client.post(PREDICT, content=body)
    assert response.status_code == 400
    assert "over this server's limit of 100000 bytes" in response.json()["error"]
    chunks = (b"x" * 10_000 for _ in range(20))  # no Content-Length: counted as it streams in
    response = client.post(PREDICT, content=chunks)
    assert response.status_code == 400 and "limit" in response.json()["error"]
    assert client.post(PREDICT, json={"inputs": REQUESTS["serving_default"]}).status_code == 200


def test_a_graph_error_becomes_a_400_with_its_message(tmp_path):
    class Checked(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def double(self, x):
            with tf.control_dependencies([tf.debugging.assert_non_negative(x, message="x: must be >= 0")]):
                return {"y": 2 * x}

    module = Checked()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.double})
    checked = serve.SavedModelServer(tmp_path, "checked")
    with TestClient(serve.make_app(checked, styles=[])) as test_client:
        response = test_client.post("/v1/models/checked:predict", json={"inputs": {"x": [1.0, -2.0]}})
        assert response.status_code == 400
        message = response.json()["error"]
        assert "x: must be >= 0" in message and "[[" not in message and "node" not in message
        # one input, one output: bare values in both forms, as TF Serving takes and gives them
        assert test_client.post("/v1/models/checked:predict", json={"inputs": [1.0, 3.0]}).json() == {"outputs": [2.0, 6.0]}
        assert test_client.post("/v1/models/checked:predict", json={"instances": [1.0, 3.0]}).json() == {
            "predictions": [2.0, 6.0]}


# -- the page, and who may call ---------------------------------------------------------------------------

def test_the_page_and_its_files_are_served_and_nothing_else(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas id=\"pad\"" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("page.js", "page.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../serve.py").status_code == 404
    assert client.get("/static/%2e%2e/serve.py").status_code == 404
    config = client.get("/page/config.json").json()
    assert config["point_stride"] == 2 and config["offset_std"] == [40.0, 37.0]
    assert "€" not in config["characters"] and "a" in config["characters"]
    assert config["limits"]["max_batch"] == 4
    # the page starts at write's measured defaults; a style the server does not have is not offered
    assert config["defaults"] == {"bias": write.DEFAULT_BIAS, "width": write.DEFAULT_WIDTH, "style": None}
    assert serve.page_defaults([{"name": write.DEFAULT_STYLE}])["style"] == write.DEFAULT_STYLE


def test_other_pages_may_not_call_unless_allowed(server):
    body = {"inputs": REQUESTS["serving_default"]}
    with TestClient(serve.make_app(server, styles=[])) as same_origin_only:
        refused = same_origin_only.post(PREDICT, json=body, headers={"Origin": "http://elsewhere.example"})
        assert refused.status_code == 403 and "--cors_origin" in refused.json()["error"]
        assert "access-control-allow-origin" not in refused.headers
        own = same_origin_only.post(PREDICT, json=body, headers={"Origin": "http://testserver"})
        assert own.status_code == 200
    with TestClient(serve.make_app(server, ["http://elsewhere.example"], styles=[])) as allowing:
        allowed = allowing.post(PREDICT, json=body, headers={"Origin": "http://elsewhere.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://elsewhere.example"
    with TestClient(serve.make_app(server, styles=[], allowed_hosts=serve.LOOPBACK_NAMES)) as loopback:
        assert loopback.get("/v1/models/synthesis", headers={"Host": "attacker.example"}).status_code == 400
        assert loopback.get("/v1/models/synthesis", headers={"Host": "127.0.0.1:8080"}).status_code == 200


# -- many at once, on a real server ------------------------------------------------------------------------

def _storm(url, count, body, timeout=120, answers=None):
    """``count`` requests at once, each on its own connection: their (status, JSON) answers, also appended
    to ``answers`` as they come."""
    start = threading.Barrier(count)
    answers = [] if answers is None else answers

    def one(_):
        with httpx.Client(timeout=timeout) as http:
            start.wait(timeout)
            response = http.post(url + PREDICT, json=body)
            answers.append((response.status_code, response.json()))

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    return answers


class GatedServer(serve.SavedModelServer):
    """Sampling waits for a gate, so that the test knows how many requests are in the queue."""

    gate = threading.Event()

    def predict(self, body):
        assert self.gate.wait(60), "the gate never opened"
        return super().predict(body)


def test_fifty_requests_at_once_are_answered_or_told_busy_and_the_queue_is_bounded(exported):
    limits = serve.Limits(workers=1, max_queue=2)
    gated = GatedServer(exported, "synthesis", limits)
    body = {"inputs": REQUESTS["serving_default"]}
    with live_server(serve.make_app(gated, styles=[])) as url:
        results = []
        storm = threading.Thread(target=_storm, args=(url, 50, body), kwargs={"answers": results})
        began = time.monotonic()
        storm.start()
        # 3 are admitted (1 sampling, held at the gate, 2 waiting): every other one is answered busy at once
        while sum(status == 503 for status, _ in list(results)) < 47 and time.monotonic() - began < 60:
            time.sleep(0.1)
        assert not any(status == 200 for status, _ in list(results))
        GatedServer.gate.set()
        storm.join(120)
        took = time.monotonic() - began
        assert not storm.is_alive() and len(results) == 50, "requests were lost"
        statuses = [status for status, _ in results]
        assert statuses.count(200) == limits.workers + limits.max_queue and statuses.count(503) == 47
        for status, answer in results:
            if status == 503:
                assert answer["error"].startswith("busy")
            else:
                assert len(answer["outputs"]["lengths"]) == 2
        assert took < 60
        with httpx.Client(timeout=60) as http:  # and it goes on serving
            assert http.post(url + PREDICT, json=body).status_code == 200


def test_fifty_real_requests_at_once_lose_none(exported):
    limits = serve.Limits(workers=1, max_queue=8)
    with live_server(serve.make_app(serve.SavedModelServer(exported, "synthesis", limits), styles=[])) as url:
        began = time.monotonic()
        results = _storm(url, 50, {"inputs": REQUESTS["serving_default"]})
        took = time.monotonic() - began
    statuses = [status for status, _ in results]
    assert len(results) == 50 and set(statuses) <= {200, 503} and statuses.count(200) >= 1, statuses
    expected = next(answer for status, answer in results if status == 200)
    assert all(answer == expected for status, answer in results if status == 200)  # one seed, one answer
    assert took < 120


# -- the command ------------------------------------------------------------------------------------------

def test_a_folder_of_numbered_versions_serves_the_newest(exported, tmp_path):
    import shutil

    for version in ("3", "12"):
        shutil.copytree(exported, tmp_path / version)
    (tmp_path / "7").mkdir()  # not a SavedModel
    assert serve.find_version(tmp_path) == (tmp_path / "12", "12")
    assert serve.find_version(exported) == (exported, "1")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        serve.find_version(tmp_path / "7")


def test_the_command_exports_a_run_serves_it_on_loopback_and_cleans_up(exported):
    run = exported.parent.parent / "run"  # the training run export_tiny exported
    process = subprocess.Popen(
        [sys.executable, "-m", "graves_tf.serve", f"--model_dir={run}", "--port=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines, url, deadline = [], None, time.monotonic() + 180
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                pytest.fail(f"the server stopped: {process.stderr.read()[-2000:]}")
            lines.append(line)
            match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            url = match and match.group(1)
        assert url, f"no URL printed: {lines}"
        folder = re.search(r"serving (\S+) as model 'synthesis' version 1", "".join(lines)).group(1)
        assert os.path.exists(os.path.join(folder, "saved_model.pb"))
        with httpx.Client(timeout=60) as http:
            assert http.get(url + "v1/models/synthesis").json()["model_version_status"][0]["state"] == "AVAILABLE"
            assert http.get(url).status_code == 200
            answer = http.post(url + PREDICT[1:], json={"inputs": REQUESTS["serving_default"]})
            assert answer.status_code == 200 and len(answer.json()["outputs"]["lengths"]) == 2
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0
    assert not os.path.exists(folder), "the temporary export was left behind"


def test_the_command_refuses_two_models_in_words(exported):
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.serve", f"--saved_model={exported}", "--model_dir=elsewhere"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0 and "not both" in result.stderr
