"""The handwriting page of `graves_tf.serve` in a real headless Chromium (Debian's `chromium`, driven by
Playwright; no browser is ever downloaded): writing typed text, a line drawn with the mouse (and pen and
finger) as the style, page mode, error messages, and the downloads. Skips without /usr/bin/chromium.

Set GRAVES_TF_SCREENSHOTS=docs/gallery to save the page's screenshot there as web_page.png.
"""

import io
import json
import os
import pathlib
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")

from graves_tf import pretrained, serve, write  # noqa: E402
from graves_tf.data.handwriting import downsample_strokes  # noqa: E402
from serve_helpers import export_shipped, live_server  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000  # the page waits for sampling on a CPU shared with other work
SENTENCE = "The quick brown fox jumps over"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page on the shipped model, served by uvicorn on a loopback port: ``(url, server)``."""
    folder = export_shipped(tmp_path_factory.mktemp("browser"))
    server = serve.SavedModelServer(folder, "synthesis", serve.Limits())
    with live_server(serve.make_app(server, allowed_hosts=serve.LOOPBACK_NAMES)) as url:
        yield url, server


@pytest.fixture(scope="module")
def browser_context():
    with playwright_api.sync_playwright() as playwright:
        profile = tempfile.mkdtemp(prefix="graves_tf_chromium_")  # a fresh user-data dir
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, accept_downloads=True,
            viewport={"width": 1100, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context, site):
    page = browser_context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site[0] + "/")
    page.wait_for_selector(".style-choice", timeout=30_000)
    page.evaluate("localStorage.clear()")
    yield page
    page.close()
    assert not errors, f"the page's script failed: {errors}"


def predictions(page):
    """Records every :predict request and its answer: a list of (request body, answer) pairs."""
    seen = []

    def on_response(response):
        if response.url.endswith(":predict"):
            seen.append((json.loads(response.request.post_data), response.json()))

    page.on("response", on_response)
    return seen


def write_and_finish(page, skip=True):
    page.click("#write")
    page.wait_for_selector("#output[data-state=writing], #output[data-state=done]", timeout=WAIT_MS)
    if skip and page.get_attribute("#output", "data-state") == "writing":
        page.click("#skip")
    page.wait_for_selector("#output[data-state=done]", timeout=WAIT_MS)
    return page.eval_on_selector("#output", "e => ({...e.dataset, paths: e.querySelectorAll('path').length})")


def stroke_count(offsets):
    offsets = np.asarray(offsets)
    return int(np.sum(offsets[:, 2] > 0.5) + (offsets[-1, 2] <= 0.5))


def test_typing_a_sentence_and_pressing_write_draws_its_strokes(page):
    seen = predictions(page)
    page.fill("#text", SENTENCE)
    page.click("#write")
    page.wait_for_selector("#output[data-state=writing]", timeout=WAIT_MS)  # drawn stroke by stroke...
    drawn = page.eval_on_selector_all("#output path", "paths => paths.filter(p => p.getAttribute('d')).length")
    page.click("#skip")  # ...unless skipped
    page.wait_for_selector("#output[data-state=done]", timeout=10_000)
    shown = page.eval_on_selector("#output", "e => ({...e.dataset, paths: e.querySelectorAll('path').length})")
    (request, answer), = seen
    # the page starts at write's defaults: its bias, primed with its default style
    default = next(s for s in pretrained.list_styles() if s["name"] == write.DEFAULT_STYLE)
    assert request["signature_name"] == "generate_primed" and request["inputs"]["text"] == [SENTENCE]
    assert request["inputs"]["bias"] == [write.DEFAULT_BIAS] and request["inputs"]["prime_text"] == [default["text"]]
    assert page.input_value("#width") == str(write.DEFAULT_WIDTH)
    length = answer["outputs"]["lengths"][0]
    offsets = answer["outputs"]["strokes"][0][:length]
    assert shown["paths"] == stroke_count(offsets) and drawn < shown["paths"]
    assert int(shown["points"]) == length and int(shown["characters"]) == len(SENTENCE)
    # As long as handwriting of that many characters: IAM-OnDB's lines run 160-190 whiteboard units and
    # 10-15 points (at the model's rate) per character; the cap is 40 points per character.
    assert 60 < float(shown["unitsWide"]) / len(SENTENCE) < 400, shown
    assert 4 < length / len(SENTENCE) < 40, shown


def draw(page, strokes, pointer="mouse"):
    """Draws strokes of (x, y) points (pixels from the pad's corner) with the mouse, a pen or a finger."""
    page.locator("#pad").scroll_into_view_if_needed()
    box = page.locator("#pad").bounding_box()
    if pointer == "mouse":
        for stroke in strokes:
            page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(box["x"] + x, box["y"] + y)
            page.mouse.up()
        return
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [(box["x"] + x, box["y"] + y) for x, y in stroke]
        if pointer == "pen":
            send = lambda kind, p, **extra: cdp.send("Input.dispatchMouseEvent", {  # noqa: E731
                "type": kind, "x": p[0], "y": p[1], "pointerType": "pen", "button": "left", "force": 0.5, **extra})
            send("mousePressed", points[0], clickCount=1, buttons=1)
            for p in points[1:]:
                send("mouseMoved", p, buttons=1)
            send("mouseReleased", points[-1], clickCount=1, buttons=0)
        else:
            touch = lambda kind, p: cdp.send("Input.dispatchTouchEvent", {  # noqa: E731
                "type": kind, "touchPoints": [{"x": p[0], "y": p[1]}] if p else []})
            touch("touchStart", points[0])
            for p in points[1:]:
                touch("touchMove", p)
            touch("touchEnd", None)
    cdp.detach()


def loops(x0, count=4, width=22, height=40, base=110):
    """A cursive-ish stroke: ``count`` loops along a baseline, one point every few pixels."""
    t = np.linspace(0, 2 * np.pi * count, 24 * count)
    return [(round(x0 + width * s / (2 * np.pi) + 8 * np.sin(s), 1), round(base - height * (1 - np.cos(s)) / 2, 1))
            for s in t]


def handwritten_line(name=write.DEFAULT_STYLE, width=820.0, left=30.0, top=40.0):
    """A real line of handwriting to draw with the mouse: a shipped style's pen positions, scaled to the pad."""
    style = next(s for s in pretrained.list_styles() if s["name"] == name)
    offsets = np.asarray(style["strokes"])
    points = np.cumsum(offsets[:, :2], axis=0)
    points = (points - points.min(axis=0)) * (width / np.ptp(points[:, 0])) + [left, top]
    ends = np.flatnonzero(offsets[:, 2] > 0.5)
    strokes = [[tuple(p) for p in np.round(points[a + 1 : b + 1], 1)] for a, b in zip([-1, *ends[:-1]], ends)]
    return [s for s in strokes if s], style["text"]


def test_a_line_drawn_with_the_mouse_is_the_style_of_the_writing(page, site, tmp_path):
    seen = predictions(page)
    strokes, text = handwritten_line()
    draw(page, strokes)
    page.fill("#my-text", text)
    with page.expect_download() as download:
        page.click("#download-style")
    style_file = tmp_path / "my_style.json"
    download.value.save_as(style_file)
    saved = json.loads(style_file.read_text())
    assert saved["text"] == text and len(saved["strokes"]) == len(strokes)
    for got, want in zip(saved["strokes"], strokes):  # the pointer's positions, in pad pixels
        assert np.allclose(np.asarray(got)[[0, -1]], np.asarray(want)[[0, -1]], atol=1.0)
    page.click("#use-mine")
    assert page.get_attribute(".style-choice[data-style=mine]", "aria-checked") == "true"
    page.fill("#text", "in my own hand")
    shown = write_and_finish(page)
    (request, answer), = seen
    inputs = request["inputs"]
    assert request["signature_name"] == "generate_primed"
    assert inputs["prime_text"] == [text] and inputs["text"] == ["in my own hand"]
    sent = np.asarray(inputs["prime_strokes"][0], np.float32)
    assert inputs["prime_lengths"] == [len(sent)]
    # What the export samples from (its downsampling of the sent trace to the model's rate) is the trace
    # `python -m graves_tf.write --prime_strokes=my_style.json` reads: the drawn strokes, rescaled.
    config = pretrained.load_config()
    expected = write.load_prime_strokes(str(style_file), config["offset_std"])
    at_model_rate = downsample_strokes(sent, config["spec"]["point_stride"]).numpy()
    assert at_model_rate.shape == expected.shape
    assert np.allclose(at_model_rate, expected, rtol=1e-4, atol=1e-3)
    assert int(np.sum(at_model_rate[:, 2])) == len(strokes)
    assert shown["paths"] == stroke_count(answer["outputs"]["strokes"][0][: answer["outputs"]["lengths"][0]])
    shots = os.environ.get("GRAVES_TF_SCREENSHOTS")
    picture = page.screenshot(full_page=True)
    from PIL import Image

    assert Image.open(io.BytesIO(picture)).size[0] == 1100
    if shots:
        pathlib.Path(shots).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(shots) / "web_page.png").write_bytes(picture)


@pytest.mark.parametrize("pointer", ["pen", "touch"])
def test_a_pen_or_a_finger_draws_on_the_pad_too(page, pointer):
    draw(page, [loops(40, 2), loops(150, 2)], pointer)
    strokes = page.evaluate("window.graves.pad")
    assert len(strokes) == 2 and all(len(s) > 20 for s in strokes)
    assert abs(strokes[1][0][0] - loops(150, 2)[0][0]) < 1.5


def test_a_shipped_style_primes_every_line_and_page_mode_wraps(page):
    seen = predictions(page)
    assert page.locator(".style-choice svg").count() == len(pretrained.list_styles())  # one thumbnail each
    neat = pretrained.list_styles()[-1]  # a style other than the default
    page.click(f".style-choice[data-style='style:{neat['name']}']")
    page.check("#page-mode")
    page.fill("#width", "20")
    page.fill("#text", "one two three four five six seven")
    shown = write_and_finish(page)
    (request, answer), = seen
    assert request["signature_name"] == "generate_primed"
    assert request["inputs"]["text"] == ["one two three four", "five six seven"]
    assert request["inputs"]["prime_text"] == [neat["text"]] * 2
    assert np.array_equal(np.asarray(request["inputs"]["prime_strokes"][0]), np.asarray(neat["strokes"]))
    assert shown["lines"] == "2"


def test_the_address_can_name_the_bias_width_and_style(browser_context, site):
    page = browser_context.new_page()
    page.goto(f"{site[0]}/?bias=1.5&width=25&style=model")
    page.wait_for_selector(".style-choice", timeout=30_000)
    assert page.input_value("#bias") == "1.5" and page.inner_text("#bias-value") == "1.50"
    assert page.input_value("#width") == "25"
    assert page.get_attribute(".style-choice[data-style=model]", "aria-checked") == "true"
    page.goto(f"{site[0]}/")
    page.wait_for_selector(".style-choice", timeout=30_000)
    chosen = page.get_attribute(f".style-choice[data-style='style:{write.DEFAULT_STYLE}']", "aria-checked")
    assert chosen == "true" and page.input_value("#bias") == str(write.DEFAULT_BIAS)
    page.close()


def test_without_a_style_a_page_keeps_the_first_lines_hand(page):
    seen = predictions(page)
    page.click(".style-choice[data-style='model']")
    page.check("#page-mode")
    page.fill("#width", "12")
    page.fill("#text", "first line then more")
    shown = write_and_finish(page)
    (first, first_answer), (rest, _) = seen
    assert first["signature_name"] == "serving_default" and first["inputs"]["text"] == ["first line"]
    assert rest["signature_name"] == "generate_primed" and rest["inputs"]["prime_text"] == ["first line"]
    # the prime is the first line as written, split so that the export's downsampling gives it back exactly
    line = np.asarray(first_answer["outputs"]["strokes"][0][: first_answer["outputs"]["lengths"][0]], np.float32)
    sent = np.asarray(rest["inputs"]["prime_strokes"][0], np.float32)
    assert np.allclose(downsample_strokes(sent, 2).numpy(), line, atol=1e-3)
    assert shown["lines"] == "2"


def message(page):
    """The page's message once it says what happened, not the "Writing ..." it shows while waiting."""
    page.wait_for_selector("#message:not([hidden]):not(.info)", timeout=WAIT_MS)
    return page.inner_text("#message")


def test_unknown_characters_are_named_in_words_and_nothing_is_sent(page):
    seen = predictions(page)
    page.fill("#text", "It costs 5 €")
    page.click("#write")
    said = message(page)
    assert "€" in said and "Cannot write" in said and "IAM-OnDB" in said
    assert not seen and page.get_attribute("#output", "data-state") == "empty"


def test_too_long_a_line_is_refused_in_words(page):
    page.fill("#text", "word " * 40)
    page.click("#write")
    said = message(page)
    assert "too long" in said and "Page" in said


def test_a_server_that_is_down_is_said_in_words(browser_context, site):
    with serve.listening_socket("127.0.0.1", 0) as closed:  # a port nobody answers once closed
        port = closed.getsockname()[1]
    page = browser_context.new_page()
    page.goto(f"{site[0]}/?server=http://127.0.0.1:{port}")
    page.wait_for_selector(".style-choice", timeout=30_000)
    page.click("#write")
    said = message(page)
    assert "Cannot reach the server" in said and str(port) in said
    page.close()


def test_the_png_and_svg_downloads_are_valid_files(page, tmp_path):
    page.fill("#text", "hello")
    shown = write_and_finish(page)
    with page.expect_download() as svg_download:
        page.click("#download-svg")
    assert svg_download.value.suggested_filename == "handwriting.svg"
    svg_path = tmp_path / "page.svg"
    svg_download.value.save_as(svg_path)
    root = ElementTree.parse(svg_path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == shown["paths"] and all(p.get("d").startswith("M") for p in paths)
    with page.expect_download() as png_download:
        page.click("#download-png")
    png_path = tmp_path / "page.png"
    png_download.value.save_as(png_path)
    from PIL import Image

    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(png_path)
    image.load()
    assert image.format == "PNG" and image.size == (2 * int(root.get("width")), 2 * int(root.get("height")))
    ink = np.asarray(image.convert("L")) < 128
    assert 0.001 < ink.mean() < 0.2  # strokes on white
