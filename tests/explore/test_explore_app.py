"""`gankit explore`'s server through Flask's test client, on tiny runs of every family trained
through the CLI: each view's pictures equal what the matching `gankit` command writes (decoded
PNGs compared pixel for pixel), saved views reproduce through their saved command, and every bad
request is a 4xx JSON message."""

from __future__ import annotations

import base64
import io
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from gankit.cli import main

pytest.importorskip("flask", reason="gankit explore needs Flask: pip install 'gankit[explore]'")

RUNS = ("stylegan2_run", "progan_run", "stylegan_run", "points_run", "cgan_run", "cyclegan_run")


@pytest.fixture(scope="module")
def client(request: pytest.FixtureRequest, explore_app: Callable[..., Any]) -> Callable[[str], Any]:
    """`client(name)`: a test client of the app for run fixture `name`, made once per module."""
    made: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in made:
            made[name] = explore_app(request.getfixturevalue(name)).test_client()
        return made[name]

    return get


def pixels(url: str) -> np.ndarray:
    """A PNG data URL's pixels as uint8 `[C, H, W]`."""
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64"
    return chw(Image.open(io.BytesIO(base64.b64decode(data))))


def chw(im: Image.Image) -> np.ndarray:
    array = np.asarray(im)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json() if response.is_json else response.data


def cli(*args: str) -> None:
    assert main([*args, "--device", "cpu"]) == 0


def generated(run: Path, tmp: Path, *args: str) -> np.ndarray:
    """uint8 samples `[N, C, H, W]` of `gankit generate RUN ARGS`."""
    cli("generate", str(run), *args, "--out", str(tmp / "g.npy"))
    return np.load(tmp / "g.npy")


def run_command(command: str, out: Path) -> None:
    """Run a command the page gave, through `gankit.cli.main`, writing `out` instead."""
    words = shlex.split(command)
    assert words[0] == "gankit"
    words[words.index("--out") + 1] = str(out)
    assert main(words[1:]) == 0


# ------------------------------------------------------------------------------ info


def test_info_describes_each_family(client: Callable[[str], Any]) -> None:
    infos = {name: ok(client(name).get("/api/info")) for name in RUNS}
    sg2, pg, sg1 = infos["stylegan2_run"], infos["progan_run"], infos["stylegan_run"]
    assert (sg2["family"], sg2["kind"], sg2["has_mapping"], sg2["num_ws"]) == (
        "stylegan2", "images", True, 4,
    )  # fmt: skip
    assert sg2["layer_groups"] == {"coarse": [0, 1, 2, 3], "middle": [], "fine": []}
    assert sg2["truncation"] == {"psi": 1.0, "cutoff": None} and sg2["stages"] is None
    assert sg2["noise_modes"] == ["const", "random", "none"]
    assert (sg2["seed_max"], sg2["max_grid"]) == (2**32 - 1, 64)
    stages = [{"resolution": 4, "alpha": 1.0}, {"resolution": 8, "alpha": 0.25}]
    assert pg["stages"] == stages and pg["stage"] == stages[-1] and not pg["has_mapping"]
    assert pg["truncation"] is None and pg["layer_groups"] is None and pg["z_dim"] == 4
    assert sg1["stages"] == stages and sg1["truncation"] == {"psi": 0.7, "cutoff": 4}
    assert infos["points_run"]["kind"] == "points"
    cgan = infos["cgan_run"]
    assert cgan["c_dim"] == 10 and cgan["classes"] == [str(k) for k in range(10)]
    cycle = infos["cyclegan_run"]
    assert (cycle["kind"], cycle["directions"], cycle["z_dim"]) == (
        "translation", ["a2b", "b2a"], None,
    )  # fmt: skip
    assert all(info["run"] and info["resolution"] in (0, 8) for info in infos.values())


# ------------------------------------------------------------------------------ grid


@pytest.mark.parametrize(
    ("name", "query", "flags"),
    [
        ("stylegan2_run", "", []),
        ("stylegan2_run", "&psi=0.5&cutoff=2", ["--trunc", "0.5", "--trunc-cutoff", "2"]),
        ("stylegan2_run", "&noise=random", ["--noise-mode", "random"]),
        ("progan_run", "", []),
        ("stylegan_run", "&noise=none", ["--noise-mode", "none"]),
        ("cgan_run", "&class=3", ["--class", "3"]),
    ],
)
def test_grid_images_are_the_generate_samples_of_each_seed(
    client: Callable[[str], Any],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    query: str,
    flags: list[str],
) -> None:
    run = request.getfixturevalue(name)
    seeds = [7, 0, 123456]
    got = ok(client(name).get(f"/api/grid?seeds=7,0,123456{query}"))
    assert got["seeds"] == seeds
    for url, seed in zip(got["images"], seeds, strict=True):
        expected = generated(run, tmp_path, "--seed", str(seed), "--num", "1", *flags)[0]
        np.testing.assert_array_equal(pixels(url), expected, err_msg=f"seed {seed}")
    # The command the page shows writes the same images.
    run_command(got["command"].replace("--out grid.png", "--out x.npy"), tmp_path / "c.npy")
    np.testing.assert_array_equal(
        np.load(tmp_path / "c.npy"), np.stack([pixels(u) for u in got["images"]])
    )


def test_conditional_grid_without_a_class_cycles_through_the_classes(
    client: Callable[[str], Any], cgan_run: Path, tmp_path: Path
) -> None:
    got = ok(client("cgan_run").get("/api/grid?seeds=0-11"))
    assert got["labels"] == [k % 10 for k in range(12)]
    expected = generated(cgan_run, tmp_path, "--seeds", "0-11")
    np.testing.assert_array_equal(np.stack([pixels(u) for u in got["images"]]), expected)


def test_truncation_from_the_page_is_generate_trunc(
    client: Callable[[str], Any], stylegan2_run: Path, tmp_path: Path
) -> None:
    c = client("stylegan2_run")
    plain, none = (ok(c.get(f"/api/grid?seeds=1,2{q}"))["images"] for q in ("", "&psi=0"))
    assert plain != none and none[0] == none[1]  # psi 0: every seed is w_avg's image
    half = ok(c.get("/api/grid?seeds=1&psi=0.5"))["images"][0]
    np.testing.assert_array_equal(
        pixels(half), generated(stylegan2_run, tmp_path, "--seed", "1", "--trunc", "0.5")[0]
    )


def test_stage_renders_an_earlier_stage(
    client: Callable[[str], Any], progan_run: Path, stylegan_run: Path, tmp_path: Path
) -> None:
    for name, run in (("progan_run", progan_run), ("stylegan_run", stylegan_run)):
        c = client(name)
        small = ok(c.get("/api/grid?seeds=3&resolution=4"))
        assert pixels(small["images"][0]).shape == (1, 4, 4)
        assert "--stage 4" in small["command"]
        faded = pixels(ok(c.get("/api/grid?seeds=3&resolution=8&alpha=0.0"))["images"][0])
        expected = generated(run, tmp_path, "--seed", "3", "--num", "1", "--stage", "8:0")[0]
        np.testing.assert_array_equal(faded, expected)
        bad = c.get("/api/grid?seeds=3&resolution=16")
        assert bad.status_code == 400 and "trained at 4, 8 px" in bad.get_json()["error"]


def test_grid_requests_waiting_together_share_one_generator_call(
    explore_app: Callable[..., Any], stylegan2_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tabs ask while the nets are busy: the two with the same options are drawn in one
    call, the third (another psi) in its own, and each gets the images it gets alone."""
    import threading

    from gankit import generate

    app = explore_app(stylegan2_run)
    explorer = app.extensions["gankit_explorer"]
    queries = ["seeds=1,2&psi=0.5", "seeds=3&psi=0.5", "seeds=4&psi=0.9"]
    alone = [ok(app.test_client().get(f"/api/grid?{q}"))["images"] for q in queries]
    calls: list[list[int]] = []
    real = generate.sample

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(list(kwargs["seeds"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "sample", counted)
    answers: dict[int, Any] = {}

    def ask(k: int) -> None:
        answers[k] = app.test_client().get(f"/api/grid?{queries[k]}").get_json()

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(3)]
    with explorer.lock:  # the nets are busy
        for thread in threads:
            thread.start()
        for _ in range(400):
            if len(explorer.coalescer.pending) == 3:
                break
            threading.Event().wait(0.01)
        assert len(explorer.coalescer.pending) == 3
    for thread in threads:
        thread.join(30)
    assert sorted(calls) == [[1, 2, 3], [4]] or sorted(calls) == [[3, 1, 2], [4]], calls
    assert [answers[k]["images"] for k in range(3)] == alone


# ------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("name", ["stylegan2_run", "progan_run", "stylegan_run"])
def test_interpolation_is_the_walk_of_gankit_video(
    client: Callable[[str], Any], request: pytest.FixtureRequest, name: str
) -> None:
    from gankit.video import latent_walk

    strip = chw(Image.open(io.BytesIO(ok(client(name).get("/api/interp.png?a=4&b=9&steps=5")))))
    frames = latent_walk(request.getfixturevalue(name), [4, 9], frames_per_seed=4, device="cpu")
    expected = frames[:5].numpy()  # [5, C, H, W] side by side
    np.testing.assert_array_equal(strip, np.concatenate(list(expected), axis=2))


# -------------------------------------------------------------------------------- mixing


def test_mix_is_the_style_mix_figure(
    client: Callable[[str], Any], stylegan2_run: Path, tmp_path: Path
) -> None:
    got = ok(client("stylegan2_run").get("/api/mix?row=3&col=8&layers=0-1&psi=0.7"))
    assert got["layers"] == [0, 1]
    cli("style-mix", str(stylegan2_run), "--rows", "3", "--cols", "8", "--styles", "0-1",
        "--trunc", "0.7", "--out", str(tmp_path / "m.npy"))  # fmt: skip
    figure = np.load(tmp_path / "m.npy")
    for key, cell in (("image", (1, 1)), ("row", (1, 0)), ("col", (0, 1))):
        np.testing.assert_array_equal(pixels(got[key]), figure[cell], err_msg=key)
    named = ok(client("stylegan2_run").get("/api/mix?row=3&col=8&layers=coarse"))
    assert named["layers"] == [0, 1, 2, 3] and named["image"] == named["col"]


def test_projected_latents_load_and_edit_like_seeds(
    client: Callable[[str], Any], stylegan2_run: Path, tmp_path: Path
) -> None:
    from gankit.generate import load_generator, seed_latents

    G = load_generator(stylegan2_run, "cpu")[0]
    with torch.no_grad():
        ws = G.mapping(seed_latents(G.z_dim, [5]), None)[0].numpy()
    folder = stylegan2_run / "proj" / "five"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "projected_w.npy", ws)
    c = client("stylegan2_run")
    assert "proj/five/projected_w" in ok(c.get("/api/info"))["latents"]
    buffer = io.BytesIO()
    np.save(buffer, ws)
    upload = {"file": (io.BytesIO(buffer.getvalue()), "my w.npy")}
    name = ok(c.post("/api/latent", data=upload))["name"]
    assert name == "explore/latents/my-w" and name in ok(c.get("/api/info"))["latents"]
    for latent in ("proj/five/projected_w", name):
        got = ok(c.get(f"/api/grid?latent={latent}&psi=0.5"))
        np.testing.assert_array_equal(
            pixels(got["images"][0]),
            generated(stylegan2_run, tmp_path, "--seed", "5", "--trunc", "0.5")[0],
        )
        assert "--ws" in got["command"]
        mixed = ok(c.get(f"/api/mix?row_latent={latent}&col=8&layers=0-1"))
        by_seed = ok(c.get("/api/mix?row=5&col=8&layers=0-1"))
        assert mixed["image"] == by_seed["image"] and mixed["row"] == by_seed["row"]


# ------------------------------------------------------------------------ scatter, translate


def test_scatter_is_the_generate_scatter(
    client: Callable[[str], Any], points_run: Path, tmp_path: Path
) -> None:
    png = ok(client("points_run").get("/api/scatter.png?seed=2&num=300"))
    cli(
        "generate", str(points_run), "--seed", "2", "--num", "300", "--out", str(tmp_path / "s.png")
    )
    np.testing.assert_array_equal(
        chw(Image.open(io.BytesIO(png))), chw(Image.open(tmp_path / "s.png"))
    )


def image_file(size: tuple[int, int] = (12, 10), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(1)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buffer, "PNG")
    return buffer.getvalue()


def test_translation_and_reconstruction_are_gankit_translate(
    client: Callable[[str], Any], cyclegan_run: Path, tmp_path: Path
) -> None:
    data = image_file()
    (tmp_path / "in.png").write_bytes(data)
    form = {"image": (io.BytesIO(data), "in.png"), "direction": "a2b"}
    got = ok(client("cyclegan_run").post("/api/translate", data=form))
    for direction, source, out in (("a2b", "in.png", "t.png"), ("b2a", "t.png", "r.png")):
        cli("translate", str(cyclegan_run), "--direction", direction, "--input",
            str(tmp_path / source), "--out", str(tmp_path / out), "--no-progress")  # fmt: skip
    assert pixels(got["input"]).shape == (1, 10, 12)  # domain A is greyscale
    np.testing.assert_array_equal(pixels(got["translated"]), chw(Image.open(tmp_path / "t.png")))
    np.testing.assert_array_equal(pixels(got["reconstructed"]), chw(Image.open(tmp_path / "r.png")))
    assert got["direction"] == "a2b" and pixels(got["translated"]).shape == (3, 10, 12)


# ------------------------------------------------------------------------------------ save


@pytest.mark.parametrize(
    ("name", "view", "params"),
    [
        ("stylegan2_run", "grid", {"seeds": [4, 1, 2], "psi": 0.6, "noise": "random"}),
        ("cgan_run", "grid", {"seeds": "0-12"}),
        ("progan_run", "grid", {"seeds": "5", "resolution": 8, "alpha": 0.1}),
        ("stylegan2_run", "mix", {"row": 1, "col": 2, "layers": "coarse"}),
        ("points_run", "scatter", {"seed": 3, "num": 200}),
    ],
)
def test_save_writes_the_png_and_a_command_that_reproduces_it(
    client: Callable[[str], Any],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    view: str,
    params: dict[str, Any],
) -> None:
    run = request.getfixturevalue(name)
    saved = ok(client(name).post("/api/save", json={"view": view, "params": params}))
    png, meta = Path(saved["png"]), json.loads(Path(saved["json"]).read_text())
    assert png.parent == run / "explore" and png.name.startswith(f"{view}-") and png.is_file()
    assert meta["command"] == saved["command"] and meta["view"] == view
    assert f"--out {png}" in saved["command"]
    run_command(saved["command"], tmp_path / "again.png")
    np.testing.assert_array_equal(chw(Image.open(tmp_path / "again.png")), chw(Image.open(png)))


@pytest.mark.parametrize(
    ("name", "stage"), [("stylegan2_run", {}), ("progan_run", {"resolution": 4})]
)
def test_a_saved_interpolation_is_the_start_of_the_video_its_command_makes(
    client: Callable[[str], Any], name: str, stage: dict[str, int], tmp_path: Path
) -> None:
    body = {"view": "interp", "params": {"a": 1, "b": 2, "steps": 4, **stage}}
    saved = ok(client(name).post("/api/save", json=body))
    meta = json.loads(Path(saved["json"]).read_text())
    assert meta["seeds"] == [1, 2] and "--frames-per-seed 3" in saved["command"]
    strip = chw(Image.open(saved["png"]))
    assert strip.shape == (1, 4 if stage else 8, 4 * (4 if stage else 8))
    run_command(saved["command"], tmp_path / "walk.gif")
    with Image.open(tmp_path / "walk.gif") as gif:
        frames = [chw(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]
    assert len(frames) == 6  # two seeds x 3 frames: the strip is frames 0-3
    np.testing.assert_array_equal(strip, np.concatenate(frames[:4], axis=2))


def test_save_translate_writes_what_its_command_makes(
    client: Callable[[str], Any], cyclegan_run: Path, tmp_path: Path
) -> None:
    form = {"image": (io.BytesIO(image_file()), "x.png"), "direction": "a2b"}
    saved = ok(client("cyclegan_run").post("/api/save?view=translate", data=form))
    assert Path(saved["png"]).parent == cyclegan_run / "explore"
    run_command(saved["command"], tmp_path / "t.png")
    np.testing.assert_array_equal(
        chw(Image.open(tmp_path / "t.png")), chw(Image.open(saved["png"]))
    )


# -------------------------------------------------------------------------- bad requests


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD = [
    ("stylegan2_run", "get", "/api/grid?seeds=1&size=9", {}, 400, "unknown parameter 'size'"),
    ("stylegan2_run", "get", "/api/grid?seeds=-1", {}, 400, "seed -1 is outside 0 .. 4294967295"),
    ("stylegan2_run", "get", "/api/grid?seeds=4294967296", {}, 400, "seed 4294967296 is outside"),
    ("stylegan2_run", "get", "/api/grid?seeds=a,b", {}, 400, "seeds are whole numbers"),
    ("stylegan2_run", "get", "/api/grid", {}, 400, "needs seeds=LIST"),
    ("stylegan2_run", "get", "/api/grid?seeds=0-99", {}, 400, "at most 64 images"),
    ("stylegan2_run", "get", "/api/grid?seeds=1&psi=x", {}, 400, "psi='x' is not a number"),
    ("stylegan2_run", "get", "/api/grid?seeds=1&psi=0.5&cutoff=9", {}, 400, "cutoff 9 is outside 0 .. 4"),
    ("stylegan2_run", "get", "/api/grid?seeds=1&noise=loud", {}, 400, "noise 'loud': use one of"),
    ("stylegan2_run", "get", "/api/grid?seeds=1&resolution=8", {}, 400, "stages exist for progressive runs"),
    ("stylegan2_run", "get", "/api/grid?latent=nope", {}, 404, "no latent named 'nope'"),
    ("stylegan2_run", "get", "/api/mix?row=1&col=2&layers=99", {}, 400, "layer 99 does not exist; this generator has num_ws = 4 style layers, 0-3"),
    ("stylegan2_run", "get", "/api/mix?row=1", {}, 400, "needs col=SEED"),
    ("stylegan2_run", "get", "/api/interp.png?a=1&b=2&steps=1", {}, 400, "steps=1 is below 2"),
    ("stylegan2_run", "post", "/api/latent", {"data": {"file": (io.BytesIO(npy_bytes(np.zeros((3, 4), np.float32))), "w.npy")}}, 400, "[num_ws, w_dim] = [4, 4]"),
    ("stylegan2_run", "post", "/api/latent", {"data": {"file": (io.BytesIO(b"hello"), "w.npy")}}, 400, "is not a .npy array file"),
    ("stylegan2_run", "post", "/api/translate", {"data": {"image": (io.BytesIO(image_file()), "x.png"), "direction": "a2b"}}, 400, "translation needs a translation run"),
    ("stylegan2_run", "post", "/api/save", {"json": {"view": "video", "params": {}}}, 400, "save one of grid, interp"),
    ("stylegan2_run", "post", "/api/save", {"json": {"view": "grid", "params": {"seeds": 1, "x": 2}}}, 400, "unknown parameter 'x'"),
    ("stylegan2_run", "get", "/api/nothing", {}, 404, "no such endpoint: /api/nothing"),
    ("stylegan2_run", "post", "/api/grid", {}, 405, "does not take POST"),
    ("progan_run", "get", "/api/mix?row=1&col=2&layers=coarse", {}, 400, "style mixing needs a StyleGAN2 or StyleGAN run"),
    ("progan_run", "get", "/api/grid?seeds=1&psi=0.5", {}, 400, "psi applies to StyleGAN2 generators"),
    ("progan_run", "get", "/api/grid?seeds=1&resolution=8&alpha=0.9", {}, 400, "only to alpha 0.25"),
    ("progan_run", "get", "/api/grid?seeds=1&alpha=0.5", {}, 400, "give resolution=R with it"),
    ("progan_run", "post", "/api/latent", {"data": {"file": (io.BytesIO(b"x"), "w.npy")}}, 400, "projected latents needs a StyleGAN2"),
    ("cgan_run", "get", "/api/grid?seeds=1&class=10", {}, 400, "class 10 is outside this run's classes: use 0 to 9"),
    ("points_run", "get", "/api/grid?seeds=1", {}, 400, "use the scatter"),
    ("points_run", "get", "/api/scatter.png?num=0", {}, 400, "num=0 is below 1"),
    ("cyclegan_run", "get", "/api/grid?seeds=1", {}, 400, "use translate"),
    ("cyclegan_run", "post", "/api/translate", {"data": {"image": (io.BytesIO(b"%PDF-1.4 not an image"), "doc.pdf"), "direction": "a2b"}}, 415, "'doc.pdf' is not an image gankit can read"),
    ("cyclegan_run", "post", "/api/translate", {"data": {"image": (io.BytesIO(image_file()), "x.png"), "direction": "up"}}, 400, "use a2b (A to B) or b2a"),
    ("cyclegan_run", "post", "/api/translate", {"data": {"direction": "a2b"}}, 400, "multipart form field 'image'"),
    ("cyclegan_run", "post", "/api/translate", {"data": {"image": (io.BytesIO(b"0" * (21 * 2**20)), "big.png"), "direction": "a2b"}}, 413, "larger than 20 MB"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "method", "url", "kwargs", "status", "message"), BAD)
def test_bad_requests_get_a_4xx_json_message(
    client: Callable[[str], Any],
    name: str,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    message: str,
) -> None:
    response = getattr(client(name), method)(url, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert message in error and "Traceback" not in error and "\n" not in error


def test_an_unexpected_failure_is_a_500_without_a_traceback(
    explore_app: Callable[..., Any], points_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = explore_app(points_run)
    explorer = app.extensions["gankit_explorer"]
    monkeypatch.setattr(explorer, "scatter_png", lambda values: 1 / 0)
    response = app.test_client().get("/api/scatter.png")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal error: ZeroDivisionError (see the server's log)"
    }


# ------------------------------------------------------------------------------------ CLI


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit explore: error: "), err
    return err[0]


def test_cli_refuses_a_remote_host_without_allow_remote(
    stylegan2_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", str(stylegan2_run), "--host", "0.0.0.0"]) == 2
    error = one_line_error(capsys)
    assert "--allow-remote" in error and "ssh -N -L 7860:127.0.0.1:7860" in error


def test_cli_names_an_unknown_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", str(tmp_path / "nope")]) == 2
    assert "is neither a run directory nor a checkpoint file" in one_line_error(capsys)


def test_missing_flask_gives_the_install_hint(
    stylegan2_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)  # `import flask` raises ImportError
    assert main(["explore", str(stylegan2_run)]) == 2
    assert one_line_error(capsys).endswith(
        "gankit explore needs Flask: pip install 'gankit[explore]'"
    )


def test_serve_answers_over_http_and_hints_the_tunnel(
    stylegan2_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real server on a free port: the start-up lines, then one request over HTTP."""
    import threading
    import urllib.request

    from werkzeug import serving

    from gankit.explore import app as app_module

    servers: list[Any] = []
    made = serving.make_server

    def keep(*args: Any, **kwargs: Any) -> Any:
        servers.append(made(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(serving, "make_server", keep)
    thread = threading.Thread(
        target=app_module.serve, args=(stylegan2_run,), kwargs={"port": 0}, daemon=True
    )
    thread.start()
    for _ in range(200):
        if servers:
            break
        thread.join(0.05)
    port = servers[0].port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=30) as answer:
            assert json.loads(answer.read())["family"] == "stylegan2"
    finally:
        servers[0].shutdown()
        thread.join(10)
    err = capsys.readouterr().err
    assert f"open http://127.0.0.1:{port}/" in err and f"ssh -N -L {port}:127.0.0.1:{port}" in err
