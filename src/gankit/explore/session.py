"""What `gankit explore` serves, without the web layer: one loaded run and the views of it.

An `Explorer` loads a run once (G_ema through `generate.load_generator`, or a translation run's
generators through `translate.load_translator`, each direction on first use) and answers every
view by calling the functions the CLI runs, so each picture on the page is a picture a `gankit`
command writes, and each answer carries that command:

- grid: `generate.sample` (image k = sample 0 of `gankit generate --seed seeds[k] --num 1`), or
  a projected latent through `generate.render_ws` (`gankit generate --ws`);
- interpolation: `video.loop_path` between two seeds (the first frames of `gankit video`);
- style mixing: `stylemix.mix_styles` (`gankit style-mix`);
- scatter: `generate.draw` and the scatter `gankit generate --out points.png` draws;
- translation: `translate.translate_image` both ways (`gankit translate`).

The nets sit behind one lock: requests from several tabs take turns on the one copy; each
request is one batched call, and grid requests that wait for the nets together share one
(`coalesce.Coalescer`). Parameters are checked by `params.Params`, each refusal a
`RequestError` with the HTTP status it deserves and one sentence naming the problem and the
fix; the library's own `GankitError`s (a class outside the run's classes, a layer past num_ws)
pass through as 400s.
`save` writes a view into RUN/explore/ (atomically) with a JSON of its parameters, seeds and the
command that reproduces the PNG.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from gankit import generate as gen
from gankit.atomic import fsync_dir, write_atomic, write_text_atomic
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.explore.coalesce import Coalescer
from gankit.explore.params import MAX_GRID, Options, Params, RequestError
from gankit.stylemix import STYLE_GROUPS, StyleMix, mix_styles, named_layers, write_style_mix
from gankit.viz import make_grid, to_uint8

#: The most images an interpolation strip holds.
MAX_STEPS = 32
#: The most points one scatter draws.
MAX_POINTS = 20_000
#: The largest upload (an image to translate, a latent file), in bytes.
MAX_UPLOAD_BYTES = 20 * 2**20
#: The longest side of an image to translate, in pixels (larger: `gankit translate --tile`).
MAX_TRANSLATE_SIDE = 2048
#: The views `save` knows.
VIEWS = ("grid", "interp", "mix", "scatter", "translate")
#: Where `gankit project` leaves a projection's ws.
PROJECTED_NAME = "projected_w.npy"

# ------------------------------------------------------------------ pictures


def png_bytes(image: torch.Tensor | np.ndarray) -> bytes:
    """uint8 `[C, H, W]` (C = 1 or 3) as PNG bytes, greyscale or RGB as `gankit` writes them."""
    array = image.permute(1, 2, 0).numpy() if isinstance(image, torch.Tensor) else image
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a `data:` URL an <img> shows."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def strip_png(images: torch.Tensor) -> bytes:
    """uint8 images `[N, C, H, W]` side by side in one row, as PNG bytes."""
    grid = make_grid(images, cols=images.shape[0])
    return png_bytes(np.ascontiguousarray(grid))


def read_upload(data: bytes, name: str, channels: int) -> Image.Image:
    """An uploaded image, upright and in `channels` ("L" or "RGB"), read as `gankit translate`
    reads its inputs; 413 when too large, 415 when it is no image PIL reads."""
    from gankit.data.imaging import open_image, to_mode

    if len(data) > MAX_UPLOAD_BYTES:
        raise RequestError(_too_large(name, len(data)), 413)
    try:
        with open_image(data) as raw:
            w, h = raw.size
            if max(w, h) > MAX_TRANSLATE_SIDE:
                raise RequestError(
                    f"{name!r} is {w}x{h} px; the page translates images up to "
                    f"{MAX_TRANSLATE_SIDE} px a side: use `gankit translate --tile 1024` for it",
                    413,
                )
            im = to_mode(ImageOps.exif_transpose(raw), channels)
            im.load()
    except RequestError:
        raise
    except Exception as exc:  # PIL raises many types for non-images; all mean "unreadable"
        raise RequestError(
            f"{name!r} is not an image gankit can read (PNG, JPEG, WebP, BMP, ...): "
            f"{type(exc).__name__}",
            415,
        ) from None
    return im


def _too_large(name: str, size: int) -> str:
    return (
        f"{name!r} is {size / 2**20:.1f} MB; uploads are limited to {MAX_UPLOAD_BYTES // 2**20} MB"
    )


# ------------------------------------------------------------------ the explorer


class Explorer:
    """One run, loaded once, and every view of it (see the module doc); thread-safe."""

    def __init__(self, run: str | os.PathLike, device: str = "cpu") -> None:
        from gankit.translate import open_checkpoint

        target = Path(run)
        self.device = resolve_device(device)
        self.translation = gen.translation_run(target)
        checkpoint, state = open_checkpoint(target)
        self.checkpoint = checkpoint.resolve()  # saved commands work from any folder
        self.spec: dict[str, Any] = dict(state["model"])
        del state
        self.run_dir = (gen.run_dir_of(target) or self.checkpoint.parent).resolve()
        self.lock = threading.RLock()
        self.coalescer = Coalescer(self.lock)
        self.translators: dict[str, Any] = {}
        self.G: torch.nn.Module | None = None
        self.sampling: dict[str, Any] = {}
        self.mixture: str | None = None
        if not self.translation:
            self.G, self.sampling, self.spec = gen.load_generator(self.checkpoint, self.device)
            self.mixture = gen.run_mixture(self.checkpoint)

    # -------------------------------------------------------------- facts

    @property
    def family(self) -> str:
        return str(self.spec["name"])

    @property
    def kind(self) -> str:
        """ "translation", "points" or "images"."""
        if self.translation:
            return "translation"
        return gen.output_kind(self.G)

    @property
    def explore_dir(self) -> Path:
        """Where saved views and uploaded latents go: RUN/explore/."""
        return self.run_dir / "explore"

    def info(self) -> dict[str, Any]:
        """The facts the page shapes its controls by (the contract's /api/info)."""
        c_dim = int(self.spec.get("c_dim") or 0)
        out: dict[str, Any] = {
            "run": str(self.run_dir), "checkpoint": str(self.checkpoint), "family": self.family,
            "kind": self.kind, "resolution": int(self.spec.get("img_resolution") or 0),
            "channels": int(self.spec.get("img_channels") or 0), "c_dim": c_dim,
            "classes": [str(k) for k in range(c_dim)], "z_dim": None, "has_mapping": False,
            "num_ws": None, "layer_groups": None, "truncation": None, "noise_modes": None,
            "stages": None, "stage": None, "directions": None, "seed_max": gen.MAX_SEED,
            "max_grid": MAX_GRID, "latents": [],
        }  # fmt: skip
        if self.translation:
            out["directions"] = ["a2b", "b2a"]
            out["channels_b"] = int(self.spec.get("img_channels_b") or out["channels"])
            return out
        G = self.G
        out["z_dim"] = int(G.z_dim)
        stages = gen.stages(G, self.sampling)
        if stages is not None:
            out["stages"] = [{"resolution": r, "alpha": a} for r, a in stages]
            res, alpha = gen.trained_stage(G, self.sampling)
            out["stage"] = {"resolution": res, "alpha": alpha}
        if gen.has_mapping(G):
            psi, cutoff = gen.PICTURE_TRUNCATION.get(self.family, (1.0, None))
            out |= {
                "has_mapping": True, "num_ws": int(G.num_ws), "layer_groups": self.layer_groups(),
                "truncation": {"psi": psi, "cutoff": None if cutoff is None else min(cutoff, G.num_ws)},
                "noise_modes": list(gen.NOISE_MODES), "latents": sorted(self.latents()),
            }  # fmt: skip
        return out

    def layer_groups(self) -> dict[str, list[int]]:
        """The ws of each style group (`stylemix.named_layers`); empty for a group the model
        has no layers of."""
        groups = {}
        for name in STYLE_GROUPS:
            try:
                groups[name] = named_layers(name, self.G.num_ws, self.G.img_resolution)
            except GankitError:
                groups[name] = []
        return groups

    # -------------------------------------------------------------- latents

    def latents(self) -> dict[str, Path]:
        """Projected latents of this run by name: every `projected_w.npy` under the run
        directory and every uploaded file in RUN/explore/latents/; the name is the file's path
        in the run directory without `.npy`."""
        found = list(self.run_dir.rglob(PROJECTED_NAME))
        uploads = self.explore_dir / "latents"
        if uploads.is_dir():
            found += sorted(uploads.glob("*.npy"))
        return {path.relative_to(self.run_dir).with_suffix("").as_posix(): path for path in found}

    def latent(self, name: str) -> tuple[Path, torch.Tensor]:
        """(path, ws `[N, num_ws, w_dim]`) of a latent by name; 404 when unknown."""
        self._need_mapping("projected latents")
        known = self.latents()
        if name not in known:
            names = ", ".join(sorted(known)) or "none yet: upload one"
            raise RequestError(f"no latent named {name!r} in this run (known: {names})", 404)
        return known[name], gen.load_ws(known[name], self.G, self.family)

    def add_latent(self, data: bytes, filename: str) -> dict[str, Any]:
        """Keep an uploaded .npy of ws as RUN/explore/latents/NAME.npy; its name."""
        self._need_mapping("projected latents")
        if len(data) > MAX_UPLOAD_BYTES:
            raise RequestError(_too_large(filename, len(data)), 413)
        gen.read_ws(data, self.G, self.family, repr(filename))  # refuses what it cannot take
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(filename).stem).strip(".-") or "latent"
        with self.lock:
            path = _unused(self.explore_dir / "latents", stem, (".npy",))
            write_atomic(path, lambda f: f.write(data))  # checked: a plain array, no pickle
        return {"name": path.relative_to(self.run_dir).with_suffix("").as_posix()}

    # -------------------------------------------------------------- views

    def grid(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Samples of seeds (or a projected latent), one batched G call; image k is sample 0 of
        `gankit generate --seed seeds[k] --num 1` with the same options."""
        samples, seeds, command, latent = self._grid(Params(values, "grid"), "grid.png")
        labels = None if samples.labels is None else samples.labels.tolist()
        return {
            "images": [data_url(png_bytes(img)) for img in samples.values],
            "seeds": seeds, "labels": labels, "latent": latent, "command": command,
        }  # fmt: skip

    def _grid(self, p: Params, out: str) -> tuple[gen.Samples, list[int], str, str | None]:
        self._need_latent_images("grid")
        options = Options.read(p)
        name = p.text("latent")
        if name is not None:
            path, ws = self.latent(name)
            if p.text("seeds") is not None:
                raise RequestError("give seeds or latent, not both: a latent is its own image")
            with self.lock:
                samples = gen.sample(self.G, self.spec, self.sampling, seeds=[0], ws=ws,
                                     **options.kwargs())  # fmt: skip
            args = ["--ws", str(path), *options.flags()]
            return samples, [], self.command("generate", args, out), name
        seeds = p.seeds("seeds")
        samples = self._sample(seeds, options)
        args = ["--seeds", ",".join(map(str, seeds)), *options.flags()]
        return samples, seeds, self.command("generate", args, out), None

    def _sample(self, seeds: list[int], options: Options) -> gen.Samples:
        """`generate.sample` of the seeds; requests with the same options that wait for the
        nets meanwhile are drawn in the same G call (`Coalescer`), when that cannot change
        their images: labels that do not depend on the position (one class, or none) and no
        random noise (seeded per seed)."""
        kwargs = options.kwargs()
        c_dim = int(self.spec.get("c_dim") or 0)
        # Check the options before they can fail a shared call (reads G's facts only, so
        # without the lock: a request must reach the queue while another one draws).
        gen.generator_kwargs(self.G, self.spec, self.sampling, **options.kwargs(with_class=False))
        gen.class_labels(c_dim, 1, options.class_index)
        if options.noise_mode == "random" or (c_dim and options.class_index is None):
            with self.lock:
                return gen.sample(self.G, self.spec, self.sampling, seeds=seeds, **kwargs)

        def draw(all_seeds: list[int]) -> gen.Samples:
            return gen.sample(self.G, self.spec, self.sampling, seeds=all_seeds, **kwargs)

        return self.coalescer.run(tuple(sorted(kwargs.items())), seeds, draw)

    def interp_png(self, values: Mapping[str, Any]) -> bytes:
        """The interpolation strip between seeds a and b as PNG bytes."""
        return strip_png(self._interp(Params(values, "interp"))[0])

    def _interp(self, p: Params) -> tuple[torch.Tensor, dict[str, Any]]:
        """(uint8 frames `[steps, C, H, W]`, what made them): `gankit video --seeds a,b
        --frames-per-seed steps-1`'s first `steps` frames, a's image to b's (`video.walk`; a
        conditional run without class uses class 0)."""
        from gankit.video import walk

        self._need_latent_images("interpolation")
        a, b = p.seed("a"), p.seed("b")
        steps = p.integer("steps", 8, 2, MAX_STEPS)
        options = Options.read(p)
        if int(self.spec.get("c_dim") or 0) and options.class_index is None:
            options.class_index = 0
        with self.lock:
            frames = walk(
                self.G, self.spec, self.sampling, [a, b], frames_per_seed=steps - 1,
                frames=steps, **options.kwargs(),
            )  # fmt: skip
        video = ["--seeds", f"{a},{b}", "--frames-per-seed", str(steps - 1), *options.flags()]
        facts = {"seeds": [a, b], "steps": steps,
                 "note": f"the strip is frames 0-{steps - 1} of this walk",
                 "command": self.command("video", video, "interp.gif")}  # fmt: skip
        return frames, facts

    def mix(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Row seed (or latent) with the chosen layers from the column seed: the mix, the row's
        and the column's own images, as `gankit style-mix` draws them."""
        figure, command = self._mix(Params(values, "mix"), "mix.png")
        images = figure.images
        return {
            "image": data_url(png_bytes(images[1, 1])), "row": data_url(png_bytes(images[1, 0])),
            "col": data_url(png_bytes(images[0, 1])), "layers": figure.styles, "command": command,
        }  # fmt: skip

    def _mix(self, p: Params, out: str) -> tuple[StyleMix, str]:
        self._need_mapping("style mixing")
        options = Options.read(p)
        col = p.seed("col")
        layers = p.text("layers")
        name = p.text("row_latent")
        if name is not None:
            if p.text("row") is not None:
                raise RequestError("give row or row_latent, not both")
            path, row_ws = self.latent(name)  # every latent of the file is a row, as the CLI's
            rows, row_args = None, ["--row-ws", str(path)]
        else:
            row = p.seed("row")
            rows, row_ws, row_args = [row], None, ["--rows", str(row)]
        with self.lock:
            figure = mix_styles(self.G, self.spec, self.sampling, rows, [col], layers,
                                row_ws=row_ws, **options.kwargs())  # fmt: skip
        args = [*row_args, "--cols", str(col), "--styles", ",".join(map(str, figure.styles))]
        return figure, self.command("style-mix", [*args, *options.flags()], out)

    def scatter_png(self, values: Mapping[str, Any]) -> bytes:
        """A 2-D run's points over the true mixture, as `gankit generate --out points.png`."""
        return self._scatter(Params(values, "scatter"))[0]

    def _scatter(self, p: Params) -> tuple[bytes, int, int]:
        from gankit.viz.points import scatter_figure

        if self.kind != "points":
            raise RequestError(
                f"the scatter shows 2-D point runs (ring8, grid25); this {self.family!r} run "
                f"makes {self.kind}"
            )
        seed = p.seed("seed", 0)
        num = p.integer("num", gen.DEFAULT_NUM["points"], 1, MAX_POINTS)
        buffer = io.BytesIO()
        with self.lock:  # matplotlib's drawing is not thread-safe either
            samples = gen.draw(self.G, self.spec, self.sampling, num=num, seed=seed,
                               mixture=self.mixture)  # fmt: skip
            scatter_figure(samples.values, samples.mixture, None, None).savefig(buffer)
        return buffer.getvalue(), seed, num

    def translate(self, data: bytes, filename: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """An uploaded image translated in a direction and back: input, translation and
        reconstruction as data URLs."""
        images, direction = self._translate(data, filename, Params(values, "translate"))
        urls = {k: data_url(png_bytes(v)) for k, v in images.items()}
        return {**urls, "direction": direction}

    def _translate(
        self, data: bytes, filename: str, p: Params
    ) -> tuple[dict[str, torch.Tensor], str]:
        from gankit.translate import DIRECTIONS, to_input, translate_image

        if not self.translation:
            raise RequestError(
                f"translation needs a translation run (CycleGAN); this run's {self.family!r} "
                "generator samples from latents: use the grid"
            )
        direction = p.text("direction")
        if direction not in DIRECTIONS:
            raise RequestError(f"direction={direction!r}: use a2b (A to B) or b2a (B to A)")
        back = "b2a" if direction == "a2b" else "a2b"
        with self.lock:
            forward, backward = self.translator(direction), self.translator(back)
            im = read_upload(data, filename, forward.channels_in)
            x = to_input(im)
            y = to_uint8(translate_image(forward, x)[0])
            again = to_input(Image.open(io.BytesIO(png_bytes(y))))  # as translate reads a PNG
            rec = to_uint8(translate_image(backward, again)[0])
        images = {"input": to_uint8(x[0]), "translated": y, "reconstructed": rec}
        return images, direction

    def translator(self, direction: str) -> Any:
        """The generator of a direction, loaded on first use (from the pinned checkpoint)."""
        from gankit.translate import load_translator

        with self.lock:
            if direction not in self.translators:
                self.translators[direction] = load_translator(
                    self.checkpoint, direction, device=self.device
                )
            return self.translators[direction]

    # -------------------------------------------------------------- saving

    def save(
        self, view: str | None, values: Mapping[str, Any], upload: tuple[bytes, str] | None = None
    ) -> dict[str, Any]:
        """Write a view into RUN/explore/VIEW-TIMESTAMP.png with a .json beside it (the
        parameters, seeds or latents, and the `gankit` command that writes the same PNG)."""
        if view not in VIEWS:
            raise RequestError(f"view={view!r}: save one of {', '.join(VIEWS)}")
        p = Params(values, view)
        with self.lock:
            stem = _unused(self.explore_dir, f"{view}-{time.strftime('%Y%m%d-%H%M%S')}",
                           (".png", ".json")).with_suffix("")  # fmt: skip
            png = stem.with_suffix(".png")
            meta = getattr(self, f"_save_{view}")(p, png, upload)
            meta = {"view": view, "params": p.values, **meta, "png": str(png),
                    "checkpoint": str(self.checkpoint),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
            json_path = stem.with_suffix(".json")
            write_text_atomic(json_path, json.dumps(meta, indent=2) + "\n")
        return {"png": str(png), "json": str(json_path), "command": meta["command"]}

    def _save_grid(self, p: Params, png: Path, upload: Any) -> dict[str, Any]:
        samples, seeds, command, latent = self._grid(p, str(png))
        _write_output(png, lambda path: gen.write_samples(samples, path))
        return {"seeds": seeds, "latent": latent, "command": command}

    def _save_interp(self, p: Params, png: Path, upload: Any) -> dict[str, Any]:
        frames, facts = self._interp(p)
        write_atomic(png, lambda f: f.write(strip_png(frames)))
        return facts

    def _save_mix(self, p: Params, png: Path, upload: Any) -> dict[str, Any]:
        figure, command = self._mix(p, str(png))
        _write_output(png, lambda path: write_style_mix(figure, path))
        return {"seeds": {"rows": figure.row_seeds, "cols": figure.col_seeds},
                "layers": figure.styles, "command": command}  # fmt: skip

    def _save_scatter(self, p: Params, png: Path, upload: Any) -> dict[str, Any]:
        picture, seed, num = self._scatter(p)
        write_atomic(png, lambda f: f.write(picture))
        args = ["--seed", str(seed), "--num", str(num)]
        return {"seeds": [seed], "command": self.command("generate", args, str(png))}

    def _save_translate(
        self, p: Params, png: Path, upload: tuple[bytes, str] | None
    ) -> dict[str, Any]:
        if upload is None:
            raise RequestError("saving a translation needs the image: send it as image=<file>")
        images, direction = self._translate(*upload, p)
        source = png.with_name(f"{png.stem}-input.png")
        rec = png.with_name(f"{png.stem}-reconstructed.png")
        for path, key in ((source, "input"), (png, "translated"), (rec, "reconstructed")):
            picture = png_bytes(images[key])
            write_atomic(path, lambda f, picture=picture: f.write(picture))
        args = ["--direction", direction, "--input", str(source)]
        command = self.command("translate", args, str(png), checkpoint_flag=True)
        return {"input": str(source), "reconstructed": str(rec), "command": command}

    # -------------------------------------------------------------- helpers

    def command(self, name: str, args: list[str], out: str, checkpoint_flag: bool = False) -> str:
        """The `gankit` command line that writes a view to `out`, on the pinned checkpoint."""
        if checkpoint_flag:
            words = [name, str(self.run_dir), *args, "--checkpoint", str(self.checkpoint)]
        else:
            words = [name, str(self.checkpoint), *args]
        return shlex.join(["gankit", *words, "--out", out, "--device", self.device.type])

    def _need_latent_images(self, what: str) -> None:
        if self.kind != "images":
            use = "the scatter" if self.kind == "points" else "translate"
            raise RequestError(
                f"the {what} shows image runs with latents; this {self.family!r} run makes "
                f"{self.kind}: use {use}"
            )

    def _need_mapping(self, what: str) -> None:
        if self.G is None or not gen.has_mapping(self.G):
            raise RequestError(
                f"{what} needs a StyleGAN2 or StyleGAN run (a mapping network and style "
                f"inputs); this run's generator is {self.family!r}, which has none"
            )


def _unused(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    """`folder/stem<suffixes[0]>`, with -2, -3, ... added to the stem until no file with any
    of `suffixes` exists."""
    folder.mkdir(parents=True, exist_ok=True)
    candidate, n = stem, 1
    while any((folder / f"{candidate}{s}").exists() for s in suffixes):
        n += 1
        candidate = f"{stem}-{n}"
    return folder / f"{candidate}{suffixes[0]}"


def _write_output(path: Path, write: Callable[[Path], Path]) -> None:
    """Let a `gankit` writer (which takes a path) write `path` atomically: into a temporary
    file of the same suffix beside it, then renamed over it."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
