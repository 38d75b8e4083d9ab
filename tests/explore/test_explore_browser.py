"""The `gankit explore` page in a real browser: headless Chromium (Debian's, through Playwright)
against the real server on the tiny trained runs of conftest.py.

Each test moves the page's controls as a user would and compares what the page shows with what the
server's API answers for the same parameters (the same PNG bytes), not just that an image is there.
Every test writes a screenshot of its view: into docs/screenshots/explore-<view>.png when
GANKIT_WRITE_SCREENSHOTS=1 (the README's pictures), else into the test's tmp_path.

Needs playwright (the test extra) and a `chromium` on PATH (`make browser-deps` installs Debian's
as root); without them the module skips, saying which is missing.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask", reason="gankit explore needs Flask: pip install 'gankit[explore]'")
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser tests need playwright: pip install 'gankit[test]' (and chromium: make browser-deps)",
)
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH: run `make browser-deps` (installs Debian's chromium as root)",
    ),
]

from werkzeug.serving import make_server  # noqa: E402 (after the skips: werkzeug comes with Flask)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1100, "height": 800}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: True once the page has read /api/info, no shown view waits for the server, and every image
#: has been decoded (its load handler, which marks small images pixelated, has run).
SETTLED = """() => document.body.dataset.ready === 'true'
    && !document.querySelector('.view:not([hidden])[data-state=pending], .view:not([hidden])[data-state=loading]')
    && [...document.images].every((img) => img.complete)"""
TIMEOUT_MS = 20_000


# ---------------------------------------------------------------------------------------------
# Fixtures: one server per run, one browser for the module, one page per test


@dataclass
class Served:
    """A run served over HTTP, and a test client of the same app (the same loaded generator)."""

    url: str
    run: Path
    client: Any

    def get_json(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def get_bytes(self, path: str) -> bytes:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.data


@pytest.fixture(scope="module")
def serve(explore_app: Callable[..., Any]) -> Iterator[Callable[[Path], Served]]:
    """`serve(run_dir)`: the run's app on a free local port (werkzeug's threaded server)."""
    servers: dict[Path, tuple[Any, Served]] = {}

    def start(run_dir: Path) -> Served:
        if run_dir not in servers:
            app = explore_app(run_dir)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_port}/"
            servers[run_dir] = (server, Served(url, Path(run_dir), app.test_client()))
        return servers[run_dir][1]

    yield start
    for server, _ in servers.values():
        server.shutdown()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian chromium with a fresh profile, never Playwright's own download."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A fresh tab; fails the test on any uncaught JavaScript error of the page."""
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# ---------------------------------------------------------------------------------------------
# Helpers


def open_page(page: Any, served: Served) -> None:
    page.goto(served.url)
    settle(page)


def settle(page: Any) -> None:
    """Waits until every shown view has drawn its latest request."""
    page.wait_for_function(SETTLED)


def decode(data_url_or_bytes: str | bytes) -> np.ndarray:
    """The pixels of a PNG given as bytes or a data: URL."""
    if isinstance(data_url_or_bytes, str):
        header, _, payload = data_url_or_bytes.partition(",")
        assert header == "data:image/png;base64", header[:40]
        data_url_or_bytes = base64.b64decode(payload)
    return np.asarray(Image.open(io.BytesIO(data_url_or_bytes)))


def src(page: Any, selector: str) -> str:
    value = page.get_attribute(selector, "src")
    assert value, f"{selector} shows no image"
    return value


def grid_srcs(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#grid img", "imgs => imgs.map(img => img.getAttribute('src'))"
    )


def png_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    """A small PNG: left half `color`, right half its complement (an image with some content)."""
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[:, : size // 2] = color
    pixels[:, size // 2 :] = [255 - c for c in color]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def npy_file(name: str, array: np.ndarray) -> dict[str, Any]:
    """`array` as a .npy file for set_input_files."""
    out = io.BytesIO()
    np.save(out, array.astype(np.float32))
    return {"name": name, "mimeType": "application/octet-stream", "buffer": out.getvalue()}


def screenshot(page: Any, view: str, tmp_path: Path, show: str | None = None) -> Path:
    """The viewport as it is now, scrolled to the element `show`: into
    docs/screenshots/explore-<view>.png with GANKIT_WRITE_SCREENSHOTS=1, else tmp_path (reduced
    to a 256-colour palette: a UI needs no more, and the PNG stays small)."""
    if show is not None:
        page.locator(show).scroll_into_view_if_needed()
    if os.environ.get("GANKIT_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"explore-{view}.png"
    else:
        path = tmp_path / f"explore-{view}.png"
    shot = Image.open(io.BytesIO(page.screenshot()))
    shot.convert("RGB").quantize(256).save(path, optimize=True)
    return path


def save(page: Any, view: str) -> str:
    """Clicks the view's Save button; the line the page shows once the server has written."""
    page.click(f".save[data-view={view}]")
    shown = f".saved[data-view={view}]"
    page.wait_for_function(
        f"() => document.querySelector('{shown}').textContent.startsWith('saved ')"
    )
    return page.inner_text(shown)


def server_grid(served: Served, seeds: list[int], **options: Any) -> list[str]:
    params = "&".join(f"{k}={v}" for k, v in options.items())
    query = f"seeds={','.join(map(str, seeds))}" + (f"&{params}" if params else "")
    return served.get_json(f"/api/grid?{query}")["images"]


# ---------------------------------------------------------------------------------------------
# Samples, truncation, pins and interpolation (StyleGAN2)


def test_grid_shows_the_servers_samples(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    open_page(page, served)
    shown = grid_srcs(page)
    assert len(shown) == 8  # the default grid size, seeds 0..7
    assert shown == server_grid(served, list(range(8)))
    assert not np.array_equal(decode(shown[0]), decode(shown[1])), "two seeds, one image"
    # 8 px samples are scaled up by a whole factor, as sharp blocks.
    look = page.eval_on_selector(
        "#grid img",
        "img => [getComputedStyle(img).imageRendering, img.getBoundingClientRect().width]",
    )
    assert look[0] == "pixelated" and look[1] >= 64 and look[1] % 8 == 0, look
    screenshot(page, "grid", tmp_path)

    page.select_option("#grid-size", "4")
    settle(page)
    assert grid_srcs(page) == shown[:4]

    page.fill("#seed", "3,9,4")
    settle(page)
    assert grid_srcs(page) == server_grid(served, [3, 9, 4])
    assert page.get_attribute("#grid button >> nth=1", "data-seed") == "9"

    page.click("#random")
    settle(page)
    start = int(page.input_value("#seed"))
    assert grid_srcs(page) == server_grid(served, list(range(start, start + 4)))

    # A bad request: the server's sentence on the page, the last grid kept; a good one clears it.
    page.fill("#seed", "4294967295")  # its grid of 4 runs past the largest seed
    settle(page)
    assert "seed 4294967296 is outside 0 .. 4294967295" in page.inner_text("#message")
    assert page.get_attribute("#grid-view", "data-state") == "error"
    assert grid_srcs(page) == server_grid(served, list(range(start, start + 4)))
    page.fill("#seed", "banana")
    settle(page)
    assert '"banana" is not a seed' in page.inner_text("#message")
    page.fill("#seed", "0")
    settle(page)
    assert page.inner_text("#message") == ""


def test_truncation_slider_changes_the_image(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    open_page(page, served)
    before = grid_srcs(page)

    page.fill("#psi", "0.5")
    settle(page)
    after = grid_srcs(page)
    assert page.input_value("#psi") == "0.5"
    assert not np.array_equal(decode(before[0]), decode(after[0])), "psi 0.5 drew the psi 1 image"
    assert after == server_grid(served, list(range(8)), psi=0.5, noise="const")
    assert page.inner_text("#psi-value") == "0.50"

    # Keyboard: one arrow press is one step of 0.05.
    page.focus("#psi")
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert page.input_value("#psi") == "0.45"
    assert grid_srcs(page) == server_grid(served, list(range(8)), psi=0.45, noise="const")

    # psi 0 sends every seed to w_avg: one image for all.
    page.fill("#psi", "0")
    settle(page)
    zero = [decode(s) for s in grid_srcs(page)]
    assert all(np.array_equal(zero[0], z) for z in zero[1:])
    screenshot(page, "truncation", tmp_path)


def test_pinning_two_samples_shows_the_interpolation(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    open_page(page, served)
    assert page.is_hidden("#interp")

    page.click("#grid button >> nth=0")
    page.click("#grid button >> nth=2")
    settle(page)
    assert page.is_visible("#interp")
    assert page.get_attribute("#grid button >> nth=0", "aria-pressed") == "true"
    strip = src(page, "#interp")
    expected = served.get_bytes("/api/interp.png?a=0&b=2&steps=8&psi=1&noise=const")
    assert base64.b64decode(strip.partition(",")[2]) == expected
    pixels = decode(strip)
    info = served.get_json("/api/info")
    assert pixels.shape[1] == 8 * pixels.shape[0] == 8 * info["resolution"]
    screenshot(page, "interp", tmp_path, "#interp-view")

    # Enter on a focused sample pins it too; the oldest pin (seed 0) makes way.
    page.focus("#grid button >> nth=5")
    page.keyboard.press("Enter")
    settle(page)
    assert page.get_attribute("#grid button >> nth=0", "aria-pressed") == "false"
    moved = base64.b64decode(src(page, "#interp").partition(",")[2])
    assert moved == served.get_bytes("/api/interp.png?a=2&b=5&steps=8&psi=1&noise=const")
    assert moved != expected


def test_rapid_slider_moves_end_on_the_last_value(page, serve, stylegan2_run):
    """Late answers never overwrite newer ones: the psi=0.3 response is held back 1.2 s by a
    fetch that also ignores the abort (as a slow proxy would), and must be dropped."""
    served = serve(stylegan2_run)
    page.add_init_script(
        """
        window.__late = {delivered: 0, aborted: 0};
        const realFetch = window.fetch;
        window.fetch = async (url, options = {}) => {
          if (!String(url).includes('psi=0.3&')) return realFetch(url, options);
          const { signal, ...rest } = options;
          const response = await realFetch(url, rest);
          await new Promise((resolve) => setTimeout(resolve, 1200));
          if (signal && signal.aborted) window.__late.aborted += 1;
          window.__late.delivered += 1;
          return response;
        };
        """
    )
    open_page(page, served)
    page.fill("#psi", "0.3")
    page.wait_for_timeout(300)  # past the debounce: the psi=0.3 requests are on their way
    page.fill("#psi", "0.6")
    settle(page)
    # The newer answers came first; now wait for the late ones (grid, interp is idle, mix).
    page.wait_for_function("() => window.__late.delivered >= 2")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__late.aborted") >= 2, "moving on did not abort the stale requests"
    assert grid_srcs(page) == server_grid(served, list(range(8)), psi=0.6, noise="const")

    # Five moves faster than the debounce: one render, of the last value.
    for value in ["0.9", "0.2", "1.3", "0.4", "0.75"]:
        page.fill("#psi", value)
    settle(page)
    assert grid_srcs(page) == server_grid(served, list(range(8)), psi=0.75, noise="const")


# ---------------------------------------------------------------------------------------------
# Style mixing


def test_style_mixing_coarse_layers_change_the_image(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    open_page(page, served)
    page.fill("#mix-row", "3")
    page.fill("#mix-col", "8")
    page.click(".preset[data-layers=coarse]")
    settle(page)
    expected = served.get_json("/api/mix?row=3&col=8&layers=coarse&psi=1&noise=const")
    mix = src(page, "#mix-image")
    assert mix == expected["image"]
    assert src(page, "#mix-row-image") == expected["row"]
    assert src(page, "#mix-col-image") == expected["col"]
    assert not np.array_equal(decode(mix), decode(expected["row"])), "coarse styles changed nothing"
    coarse = decode(mix)

    # Only the first two ws (the 4 px layers) from the column: yet another image.
    page.fill("#mix-layers", "0-1")
    settle(page)
    assert page.get_attribute(".preset[data-layers=coarse]", "aria-pressed") == "false"
    partial = src(page, "#mix-image")
    assert partial == served.get_json("/api/mix?row=3&col=8&layers=0-1&psi=1&noise=const")["image"]
    assert not np.array_equal(decode(partial), coarse)
    screenshot(page, "mix", tmp_path, "#mix-view")

    # A layer the model does not have: the server's sentence on the page, the last image kept.
    num_ws = served.get_json("/api/info")["num_ws"]
    page.fill("#mix-layers", str(num_ws))
    settle(page)
    message = page.inner_text("#message")
    assert "Style mixing" in message and str(num_ws) in message
    assert src(page, "#mix-image") == partial
    page.fill("#mix-layers", "coarse")
    settle(page)
    assert page.inner_text("#message") == ""


def test_projected_latent_upload_shows_and_mixes_it(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    G = served.client.application.extensions["gankit_explorer"].G
    open_page(page, served)

    # The wrong shape: the server's sentence, naming the shape it takes.
    page.set_input_files("#latent-file", files=[npy_file("wrong.npy", np.zeros((2, 3)))])
    page.wait_for_function("() => document.querySelector('#message').textContent !== ''")
    assert f"[{G.num_ws}, {G.w_dim}]" in page.inner_text("#message")

    ws = np.random.default_rng(0).standard_normal((G.num_ws, G.w_dim)).astype(np.float32)
    page.set_input_files("#latent-file", files=[npy_file("me.npy", ws)])
    page.wait_for_function("() => document.querySelector('#latent').value !== ''")
    settle(page)
    name = page.input_value("#latent")
    assert page.inner_text("#message") == ""
    assert (
        grid_srcs(page) == served.get_json(f"/api/grid?latent={name}&psi=1&noise=const")["images"]
    )
    assert page.is_disabled("#mix-row")
    mix = served.get_json(f"/api/mix?row_latent={name}&col=1&layers=coarse&psi=1&noise=const")
    assert src(page, "#mix-row-image") == mix["row"]
    assert src(page, "#mix-image") == mix["image"]

    # Edited like a seed: truncation moves it too.
    page.fill("#psi", "0.5")
    settle(page)
    assert (
        grid_srcs(page) == served.get_json(f"/api/grid?latent={name}&psi=0.5&noise=const")["images"]
    )
    screenshot(page, "latent", tmp_path)
    # The run is shared with the server's tests: take the upload out again.
    (Path(stylegan2_run) / f"{name}.npy").unlink()


# ---------------------------------------------------------------------------------------------
# Saving


def test_save_writes_png_and_json_into_the_run(page, serve, stylegan2_run, tmp_path):
    served = serve(stylegan2_run)
    out = Path(stylegan2_run) / "explore"
    before = set(out.glob("*")) if out.exists() else set()
    open_page(page, served)
    page.fill("#seed", "5")
    page.select_option("#grid-size", "4")
    settle(page)

    shown_text = save(page, "grid")
    written = sorted(set(out.glob("*")) - before)
    assert [p.suffix for p in written] == [".json", ".png"], written
    assert str(written[1]) in shown_text and str(written[0]) in shown_text
    meta = json.loads(written[0].read_text())
    assert "gankit generate" in meta["command"] and "--seeds 5,6,7,8" in meta["command"]
    assert meta["seeds"] == [5, 6, 7, 8]
    assert Image.open(written[1]).format == "PNG"

    save(page, "mix")
    mixes = sorted(set(out.glob("mix-*")) - before)
    assert [p.suffix for p in mixes] == [".json", ".png"]
    assert "gankit style-mix" in json.loads(mixes[0].read_text())["command"]
    screenshot(page, "save", tmp_path)


# ---------------------------------------------------------------------------------------------
# Class and stage selectors


def info_resolution(served) -> int:
    return served.get_json("/api/info")["resolution"]


def test_class_selector_changes_the_samples(page, serve, cgan_run, tmp_path):
    served = serve(cgan_run)
    open_page(page, served)
    assert page.eval_on_selector("#class", "select => select.options.length") == 1 + 10
    # By default image k has class k mod 10, as `gankit generate --seeds` draws them.
    mixed = grid_srcs(page)
    assert mixed == server_grid(served, list(range(8)))
    assert page.inner_text("#grid button >> nth=3") == "3 · class 3"

    page.select_option("#class", "0")
    settle(page)
    zero = grid_srcs(page)
    assert zero == server_grid(served, list(range(8)), **{"class": 0})
    assert zero[0] == mixed[0] and zero[1] != mixed[1]

    # Classes each in turn: the walk between two pins takes the first pin's class, so its first
    # frame is the pinned image itself.
    page.select_option("#class", "")
    settle(page)
    page.click("#grid button >> nth=3")
    page.click("#grid button >> nth=5")
    settle(page)
    walk = base64.b64decode(src(page, "#interp").partition(",")[2])
    assert walk == served.get_bytes("/api/interp.png?a=3&b=5&steps=8&class=3")
    first = decode(walk)[:, : info_resolution(served)]
    np.testing.assert_array_equal(first, decode(mixed[3]))
    assert "(class 3)" in page.inner_text("#interp-help")

    page.select_option("#class", "3")
    settle(page)
    three = grid_srcs(page)
    assert three == server_grid(served, list(range(8)), **{"class": 3})
    assert not np.array_equal(decode(three[0]), decode(zero[0]))
    assert page.is_hidden("#mix-view") and page.is_hidden("#truncation-controls")
    screenshot(page, "class", tmp_path)


def test_stage_selector_changes_the_resolution(page, serve, progan_run, tmp_path):
    served = serve(progan_run)
    info = served.get_json("/api/info")
    open_page(page, served)
    trained = decode(grid_srcs(page)[0])
    assert trained.shape[0] == info["stage"]["resolution"]

    smallest = min(range(len(info["stages"])), key=lambda i: info["stages"][i]["resolution"])
    stage = info["stages"][smallest]
    page.select_option("#stage", str(smallest))
    settle(page)
    shown = grid_srcs(page)
    assert decode(shown[0]).shape[0] == stage["resolution"] < trained.shape[0]
    assert shown == server_grid(
        served, list(range(8)), resolution=stage["resolution"], alpha=stage["alpha"]
    )
    screenshot(page, "stage", tmp_path)


def test_alpha_slider_fades_the_trained_stage_in_and_out(page, serve, progan_run):
    """The trained stage opens at its own alpha; moving the slider renders any alpha below it
    (`gankit generate --stage R:ALPHA`); the smallest resolution has no fade to move."""
    served = serve(progan_run)
    info = served.get_json("/api/info")
    open_page(page, served)
    res, alpha = info["stage"]["resolution"], info["stage"]["alpha"]
    assert 0 < alpha < 1 and page.is_enabled("#alpha")
    assert page.get_attribute("#alpha", "max") == str(alpha)
    trained = grid_srcs(page)
    assert trained == server_grid(served, list(range(8)), resolution=res, alpha=alpha)

    page.fill("#alpha", "0")
    settle(page)
    faded = grid_srcs(page)
    assert page.inner_text("#alpha-value") == "0.00"
    assert faded == server_grid(served, list(range(8)), resolution=res, alpha=0)
    assert decode(faded[0]).shape == decode(trained[0]).shape and faded[0] != trained[0]

    smallest = min(range(len(info["stages"])), key=lambda i: info["stages"][i]["resolution"])
    page.select_option("#stage", str(smallest))
    settle(page)
    assert page.is_disabled("#alpha") and page.input_value("#alpha") == "1"


def test_stylegan_v1_growing_run_shows_its_defaults_and_stage(page, serve, stylegan_run):
    """StyleGAN (v1) in its fade-in: truncation (psi 0.7 with a cutoff by default), noise, stage
    and style mixing together; the page's defaults draw what the server's defaults draw."""
    served = serve(stylegan_run)
    info = served.get_json("/api/info")
    open_page(page, served)
    assert page.input_value("#psi") == "0.7"
    assert page.input_value("#cutoff") == str(info["truncation"]["cutoff"])
    assert grid_srcs(page) == server_grid(served, list(range(8)))
    assert page.inner_text("#message") == ""
    assert src(page, "#mix-image") == served.get_json("/api/mix?row=0&col=1&layers=coarse")["image"]

    page.select_option("#stage", "0")  # 4 px: the mix follows the stage too
    settle(page)
    assert decode(grid_srcs(page)[0]).shape[0] == decode(src(page, "#mix-image")).shape[0] == 4


# ---------------------------------------------------------------------------------------------
# 2-D points


def test_points_run_shows_the_scatter(page, serve, points_run, tmp_path):
    served = serve(points_run)
    open_page(page, served)
    assert page.is_hidden("#grid-view") and page.is_visible("#scatter")
    shown = base64.b64decode(src(page, "#scatter").partition(",")[2])
    assert shown == served.get_bytes("/api/scatter.png?seed=0&num=2500")
    assert min(decode(shown).shape[:2]) > 100  # a plot, not a sample
    rendering = page.eval_on_selector("#scatter", "img => getComputedStyle(img).imageRendering")
    assert rendering == "auto"  # shown at its size or smaller: smooth
    screenshot(page, "scatter", tmp_path)

    page.fill("#seed", "7")
    settle(page)
    other = base64.b64decode(src(page, "#scatter").partition(",")[2])
    assert other == served.get_bytes("/api/scatter.png?seed=7&num=2500") != shown


# ---------------------------------------------------------------------------------------------
# Translation


def server_translation(served: Served, image: bytes, name: str, direction: str) -> dict:
    response = served.client.post(
        "/api/translate",
        data={"image": (io.BytesIO(image), name), "direction": direction},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_translation_of_an_uploaded_and_a_dropped_image(page, serve, cyclegan_run, tmp_path):
    served = serve(cyclegan_run)
    open_page(page, served)
    red = png_bytes((220, 30, 30))
    page.set_input_files(
        "#translate-file", files=[{"name": "red.png", "mimeType": "image/png", "buffer": red}]
    )
    settle(page)
    direction = page.input_value("#direction")
    expected = server_translation(served, red, "red.png", direction)
    assert src(page, "#translated") == expected["translated"]
    assert src(page, "#reconstructed") == expected["reconstructed"]
    assert src(page, "#translate-input") == expected["input"]

    other = "b2a" if direction == "a2b" else "a2b"
    page.select_option("#direction", other)
    settle(page)
    flipped = server_translation(served, red, "red.png", other)
    assert src(page, "#translated") == flipped["translated"]
    screenshot(page, "translate", tmp_path)

    # A drop on the zone, as a file dragged from the desktop delivers it.
    blue = png_bytes((20, 60, 230))
    page.evaluate(
        """({b64, name}) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: 'image/png'}));
            const zone = document.querySelector('#translate-drop');
            for (const type of ['dragenter', 'dragover', 'drop']) {
              zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
            }
        }""",
        {"b64": base64.b64encode(blue).decode(), "name": "blue.png"},
    )
    settle(page)
    dropped = server_translation(served, blue, "blue.png", other)
    assert src(page, "#translated") == dropped["translated"]
    assert not np.array_equal(decode(dropped["input"]), decode(expected["input"]))

    # Saving a translation sends the image again and writes PNG + JSON into RUN/explore/.
    out = Path(cyclegan_run) / "explore"
    before = set(out.glob("*")) if out.exists() else set()
    text = save(page, "translate")
    json_path = Path(text.split(" and ")[-1])
    meta = json.loads(json_path.read_text())
    assert meta["view"] == "translate" and meta["params"]["direction"] == other
    assert "gankit translate" in meta["command"] and f"--direction {other}" in meta["command"]
    saved = np.asarray(Image.open(meta["png"]))
    assert np.array_equal(saved, decode(dropped["translated"]))
    assert {json_path, Path(meta["png"])} <= set(out.glob("*")) - before


def test_bad_upload_shows_the_message(page, serve, cyclegan_run, tmp_path):
    served = serve(cyclegan_run)
    open_page(page, served)
    assert page.inner_text("#message") == "" and page.is_hidden("#message")
    page.set_input_files(
        "#translate-file",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image\n"}],
    )
    settle(page)
    assert page.is_visible("#message")
    assert page.get_attribute("#message", "role") == "alert"
    message = page.inner_text("#message")
    assert "notes.txt" in message and "not an image" in message
    assert page.get_attribute("#translated", "src") is None
    screenshot(page, "error", tmp_path)

    # A good image afterwards clears it.
    page.set_input_files(
        "#translate-file",
        files=[{"name": "ok.png", "mimeType": "image/png", "buffer": png_bytes((0, 200, 0))}],
    )
    settle(page)
    assert page.inner_text("#message") == ""
    assert src(page, "#translated").startswith("data:image/png;base64,")
