"""CycleGAN training throughput on the CPU: gankit against the official code and PyTorch-GAN.

What is measured: images per second of CycleGAN training at batch 1, the official setting. One
iteration is one G step and one D step on one image of each domain, so images/s is iterations per
second (gankit's kimg counts one image per iteration at batch 1). Every side trains at the same
resolution (`--resolution`) and residual-block count (`--blocks`), with widths ngf = ndf = 64,
instance norm, the least-squares loss, cycle weight 10, identity weight 0.5 x 10, pools of 50
past fakes, Adam 2e-4 with betas (0.5, 0.999), float32 and the same torch thread count
(`--threads`, also OMP_NUM_THREADS and MKL_NUM_THREADS).

- gankit: `Trainer.step()` of the trainer `gankit train` builds (`build_trainer`), recipe
  `cyclegan` with its defaults, model `auto` (the recipe's `cyclegan`) with arch ngf 64, ndf 64
  and `--blocks` blocks, on a temporary unpaired folder (trainA/ and trainB/ with 8 random RGB
  PNGs each at the resolution). The step includes gankit's data path: the batch from its loader
  and the official resize-and-crop and flips of each image, done on the device
  (`--preprocess none` keeps the flips only).
- official: junyanz/pytorch-CycleGAN-and-pix2pix, its `models/networks.py` (ResnetGenerator,
  NLayerDiscriminator `basic`, `get_norm_layer('instance')`, GANLoss `lsgan`, `init_weights`
  normal 0.02) and `util/image_pool.py` (ImagePool) loaded unchanged from `--official DIR` (a
  checkout, or a folder with those two files). Its BaseModel and options are not imported:
  `CycleGANModel.optimize_parameters` is written out here call for call: forward G_A(A),
  G_B(fake_B), G_B(B), G_A(fake_A); D_A and D_B frozen; identity G_A(B), G_B(A); the losses;
  G step (one Adam for both Gs); D_A and D_B unfrozen; D_A on real B and a pooled fake B, then
  D_B on real A and a pooled fake A, each `backward_D_basic`; D step (one Adam for both Ds).
- erik: eriklindernoren/PyTorch-GAN's `implementations/cyclegan`: `models.py` (GeneratorResNet,
  Discriminator, weights_init_normal) and `utils.py` (ReplayBuffer) from `--erik DIR` (a folder
  with those files, or a checkout), its `cyclegan.py` iteration written out here: identity L1
  (G_BA(A), G_AB(B), weight 5), GAN MSE against its `valid`/`fake` targets, cycle L1 (weight 10),
  G step with D_A and D_B left trainable (as it does); D_A, then D_B, each with its own Adam
  and ReplayBuffer; the `.item()` reads of its progress line (not its sample grids, every 100
  batches, nor its epoch-end scheduler steps). Its networks differ from the official ones (table
  notes): upsampling is nearest `Upsample` + 3x3 conv (4x the multiply-adds of the official
  transposed conv), and its D has four stride-2 convs and a zero-padded 512->1 conv (a 1/16 score
  map) where the official D has three and a stride-1 256->512 conv at 1/8; its widths are fixed at
  64. The parameter counts come out equal to the official ones all the same.

Reals for the references are one fixed batch of each domain in [-1, 1] (their DataLoader workers,
separate processes in their train scripts, are not timed); gankit's come through its loader.

Timing: each implementation runs in its own process (started one after the other, so no two
build at once) with its own models, and runs `--warmup` untimed iterations. Then come `--rounds`
rounds: in each, every process in turn times `--iters` iterations while the others wait idle, the
order rotating between rounds, so load from elsewhere on the machine hits all alike. A round's
throughput is `--iters` over their total seconds; the table gives per implementation the median,
min and max images/s over the rounds and gankit's speed over each reference (median over
median). The first warm-up iteration runs under `torch.utils.flop_counter` (matmuls and
convolutions of every forward and backward pass) for the GFLOP/iter column; it still warms up
(every kernel runs), and `--no-flops` skips the count. The networks check compares each side's G
and D parameter counts with gankit's (and the parameter shapes in order) and is printed before
the table. `--profile` then runs `--iters` more iterations per implementation under
`torch.profiler` and prints the top operators by self CPU time.

On a shared machine check `uptime` first: with other work on the cores, `--threads 2` on 2 cores
slows down many times (threads wait for each other); measure with `--threads 1` then, and say so.

    python benchmarks/cyclegan_speed.py                      # 128 px, 6 blocks: ~6 min on 2 cores
    python benchmarks/cyclegan_speed.py --resolution 256 --rounds 3 --iters 1 --warmup 1  # 9 blocks
    python benchmarks/cyclegan_speed.py --resolution 32 --blocks 2 --iters 2 --rounds 2 --warmup 1
    python benchmarks/cyclegan_speed.py --official PATH --erik PATH --profile
    python benchmarks/cyclegan_speed.py --device cuda --resolution 256 --iters 20 --rounds 5
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import itertools
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import _flop_counter, machine_description

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
RESULT_MARKER = "@@RESULT "
IMPLS = ("gankit", "official", "erik")
WIDTH = 64  # ngf = ndf: the official default, and PyTorch-GAN's fixed width
IMAGES_PER_DOMAIN = 8
PAUSE_S = 0.5  # between two measurements
LR, BETAS, POOL = 2e-4, (0.5, 0.999), 50
LAMBDA_CYCLE, LAMBDA_IDENTITY = 10.0, 0.5
#: The files each reference is read from, relative to its folder (first layout found wins).
REFERENCE_FILES: dict[str, list[dict[str, str]]] = {
    "official": [{"networks": "models/networks.py", "image_pool": "util/image_pool.py"}],
    "erik": [
        {"models": "models.py", "utils": "utils.py"},
        {
            "models": "implementations/cyclegan/models.py",
            "utils": "implementations/cyclegan/utils.py",
        },
    ],
}
Step = Callable[[], None]


# ---------------------------------------------------------------------------------------- worker


def load_module(name: str, path: Path) -> types.ModuleType:
    """The module in file `path`, imported under `name` (nothing is added to sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_files(impl: str, folder: str) -> dict[str, Path] | None:
    """The reference's source files under `folder` (None when a file is missing)."""
    for layout in REFERENCE_FILES[impl]:
        files = {key: Path(folder) / rel for key, rel in layout.items()}
        if all(path.is_file() for path in files.values()):
            return files
    return None


def write_unpaired_folder(root: Path, resolution: int) -> Path:
    """trainA/ and trainB/ with `IMAGES_PER_DOMAIN` random RGB PNGs each: the CycleGAN layout."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for domain in ("A", "B"):
        folder = root / f"train{domain}"
        folder.mkdir(parents=True)
        for k in range(IMAGES_PER_DOMAIN):
            pixels = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{k:03d}.png")
    return root


def gankit_step(spec: dict[str, Any], workdir: Path) -> tuple[Step, dict[str, torch.nn.Module]]:
    """`Trainer.step()` of the trainer `gankit train` builds, recipe cyclegan; and its G and D."""
    os.environ["GANKIT_CACHE_DIR"] = str(workdir / "cache")  # the prepared data stays in tmp
    from gankit.config import config_from_dict
    from gankit.train.run import build_trainer

    data = write_unpaired_folder(workdir / "ab", spec["resolution"])
    arch = {"ngf": WIDTH, "ndf": WIDTH, "n_blocks": spec["blocks"]}
    config = {
        "model": {"name": "auto", "arch": arch},
        "recipe": {"name": "cyclegan", "args": {"preprocess": spec["preprocess"]}},
        "data": {"name": str(data), "resolution": spec["resolution"]},
        "train": {"out": str(workdir / "run"), "kimg": 1000.0, "batch_size": 1,
                  "device": spec["device"],
                  "progress": False, "threads": spec["threads"]},
    }  # fmt: skip
    trainer = build_trainer(config_from_dict(config))

    def step() -> None:
        trainer.step()
        trainer.tick_logs.clear()

    return step, {"G": trainer.nets["G_ab"], "D": trainer.nets["D_a"]}


def fixed_reals(resolution: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """One image of each domain in [-1, 1], [1, 3, R, R]: the references' inputs."""
    real_A = torch.rand(1, 3, resolution, resolution) * 2 - 1
    real_B = torch.rand(1, 3, resolution, resolution) * 2 - 1
    return real_A.to(device), real_B.to(device)


def set_requires_grad(nets: list[torch.nn.Module], flag: bool) -> None:
    """The official `BaseModel.set_requires_grad`."""
    for net in nets:
        for param in net.parameters():
            param.requires_grad = flag


def official_nets(spec: dict[str, Any]) -> tuple[types.ModuleType, types.ModuleType, dict]:
    """The official modules and G_A, G_B, D_A, D_B as `define_G`/`define_D` build them (any block
    count: `define_G` names only 6 and 9, so ResnetGenerator is called as it calls it)."""
    files = reference_files("official", spec["official"])
    assert files is not None
    networks = load_module("cyclegan_official_networks", files["networks"])
    image_pool = load_module("cyclegan_official_image_pool", files["image_pool"])
    norm = networks.get_norm_layer("instance")

    def generator() -> torch.nn.Module:
        net = networks.ResnetGenerator(
            3, 3, WIDTH, norm_layer=norm, use_dropout=False, n_blocks=spec["blocks"]
        )
        return networks.init_net(net, "normal", 0.02, [])

    nets = {
        "G_A": generator(),
        "G_B": generator(),
        "D_A": networks.define_D(3, WIDTH, "basic", 3, "instance", "normal", 0.02, []),
        "D_B": networks.define_D(3, WIDTH, "basic", 3, "instance", "normal", 0.02, []),
    }
    return networks, image_pool, {k: net.to(spec["device"]) for k, net in nets.items()}


def official_step(spec: dict[str, Any]) -> tuple[Step, dict[str, torch.nn.Module]]:
    """`CycleGANModel.optimize_parameters` (lsgan, lambda_A = lambda_B = 10, identity 0.5)."""
    networks, image_pool, n = official_nets(spec)
    G_A, G_B, D_A, D_B = n["G_A"], n["G_B"], n["D_A"], n["D_B"]
    pools = {"A": image_pool.ImagePool(POOL), "B": image_pool.ImagePool(POOL)}
    criterion_gan = networks.GANLoss("lsgan").to(spec["device"])
    l1 = torch.nn.L1Loss()
    chain = itertools.chain
    opt_G = torch.optim.Adam(chain(G_A.parameters(), G_B.parameters()), lr=LR, betas=BETAS)
    opt_D = torch.optim.Adam(chain(D_A.parameters(), D_B.parameters()), lr=LR, betas=BETAS)
    real_A, real_B = fixed_reals(spec["resolution"], spec["device"])

    def backward_D_basic(netD: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> None:
        loss_D_real = criterion_gan(netD(real), True)
        loss_D_fake = criterion_gan(netD(fake.detach()), False)
        ((loss_D_real + loss_D_fake) * 0.5).backward()

    def step() -> None:
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        idt_A = G_A(real_B)
        loss_idt_A = l1(idt_A, real_B) * LAMBDA_CYCLE * LAMBDA_IDENTITY
        idt_B = G_B(real_A)
        loss_idt_B = l1(idt_B, real_A) * LAMBDA_CYCLE * LAMBDA_IDENTITY
        loss_G_A = criterion_gan(D_A(fake_B), True)
        loss_G_B = criterion_gan(D_B(fake_A), True)
        loss_cycle_A = l1(rec_A, real_A) * LAMBDA_CYCLE
        loss_cycle_B = l1(rec_B, real_B) * LAMBDA_CYCLE
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        opt_G.step()
        set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        backward_D_basic(D_A, real_B, pools["B"].query(fake_B))
        backward_D_basic(D_B, real_A, pools["A"].query(fake_A))
        opt_D.step()

    return step, {"G": G_A, "D": D_A}


def import_erik(spec: dict[str, Any]) -> tuple[types.ModuleType, types.ModuleType]:
    """PyTorch-GAN's cyclegan `models` and `utils` modules (utils imports torchvision only for
    `save_image`, never called here; a stand-in is used where torchvision is missing)."""
    files = reference_files("erik", spec["erik"])
    assert files is not None
    if importlib.util.find_spec("torchvision") is None:
        stub = types.ModuleType("torchvision.utils")
        stub.save_image = None  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": types.ModuleType("torchvision"), stub.__name__: stub})
    models = load_module("cyclegan_erik_models", files["models"])
    utils = load_module("cyclegan_erik_utils", files["utils"])
    return models, utils


def erik_step(spec: dict[str, Any]) -> tuple[Step, dict[str, torch.nn.Module]]:
    """One iteration of PyTorch-GAN's cyclegan.py loop (lambda_cyc 10, lambda_id 5)."""
    models, utils = import_erik(spec)
    res = spec["resolution"]
    shape = (3, res, res)
    G_AB, G_BA = (models.GeneratorResNet(shape, spec["blocks"]) for _ in range(2))
    D_A, D_B = models.Discriminator(shape), models.Discriminator(shape)
    for net in (G_AB, G_BA, D_A, D_B):
        net.apply(models.weights_init_normal).to(spec["device"])
    mse, l1 = torch.nn.MSELoss(), torch.nn.L1Loss()
    chain = itertools.chain
    opt_G = torch.optim.Adam(chain(G_AB.parameters(), G_BA.parameters()), lr=LR, betas=BETAS)
    opt_D_A = torch.optim.Adam(D_A.parameters(), lr=LR, betas=BETAS)
    opt_D_B = torch.optim.Adam(D_B.parameters(), lr=LR, betas=BETAS)
    buffers = {"A": utils.ReplayBuffer(), "B": utils.ReplayBuffer()}
    real_A, real_B = fixed_reals(res, spec["device"])
    lambda_id = 5.0  # its --lambda_id default; its losses average the two directions

    def d_step(D: torch.nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor,
               fake: torch.Tensor, valid: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:  # fmt: skip
        opt.zero_grad()
        loss_real = mse(D(real), valid)
        loss_fake = mse(D(fake.detach()), zeros)
        loss = (loss_real + loss_fake) / 2
        loss.backward()
        opt.step()
        return loss

    def step() -> None:
        valid = torch.ones((1, *D_A.output_shape), device=real_A.device)
        zeros = torch.zeros((1, *D_A.output_shape), device=real_A.device)
        G_AB.train()
        G_BA.train()
        opt_G.zero_grad()
        loss_identity = (l1(G_BA(real_A), real_A) + l1(G_AB(real_B), real_B)) / 2
        fake_B = G_AB(real_A)
        loss_GAN_AB = mse(D_B(fake_B), valid)
        fake_A = G_BA(real_B)
        loss_GAN = (loss_GAN_AB + mse(D_A(fake_A), valid)) / 2
        loss_cycle = (l1(G_BA(fake_B), real_A) + l1(G_AB(fake_A), real_B)) / 2
        loss_G = loss_GAN + LAMBDA_CYCLE * loss_cycle + lambda_id * loss_identity
        loss_G.backward()
        opt_G.step()
        loss_D_A = d_step(D_A, opt_D_A, real_A, buffers["A"].push_and_pop(fake_A), valid, zeros)
        loss_D_B = d_step(D_B, opt_D_B, real_B, buffers["B"].push_and_pop(fake_B), valid, zeros)
        for value in ((loss_D_A + loss_D_B) / 2, loss_G, loss_GAN, loss_cycle, loss_identity):
            value.item()  # its progress line reads these every iteration

    return step, {"G": G_AB, "D": D_A}


def _timed(step: Step, iters: int) -> list[float]:
    """Seconds of each of `iters` iterations (on a GPU, to the end of its queued work)."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    seconds = []
    for _ in range(iters):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        seconds.append(time.perf_counter() - t0)
    return seconds


def _profile(step: Step, iters: int, top: int) -> str:
    """The top operators by self CPU time over `iters` iterations."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def _net_facts(nets: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Parameter count and the parameter shapes in order, of G and of D."""
    return {
        k: {"params": sum(p.numel() for p in net.parameters()),
            "shapes": [list(p.shape) for p in net.parameters()]}
        for k, net in nets.items()
    }  # fmt: skip


def warm_up(step: Step, spec: dict[str, Any]) -> float | None:
    """`spec["warmup"]` untimed iterations; the first one under the FLOP counter when asked.
    Returns the FLOPs of that iteration (None when not counted)."""
    flops = None
    for k in range(spec["warmup"]):
        if k == 0 and spec["count_flops"]:
            counter = _flop_counter()
            with counter:
                step()
            flops = float(counter.get_total_flops())
        else:
            step()
    return flops


def reply(payload: dict[str, Any]) -> None:
    """One answer to the parent: a marked JSON line on stdout."""
    print(RESULT_MARKER + json.dumps(payload), flush=True)


def serve(spec: dict[str, Any]) -> None:
    """The worker: build one implementation, warm up and say so, then answer the parent's
    commands (`time N`, `profile N`, `quit`) until told to quit."""
    import warnings

    warnings.filterwarnings("ignore")  # the references' deprecated calls (Variable, ...)
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    random.seed(0)
    builders = {"official": official_step, "erik": erik_step}
    with tempfile.TemporaryDirectory() as tmp:
        if spec["impl"] == "gankit":
            step, nets = gankit_step(spec, Path(tmp))
        else:
            step, nets = builders[spec["impl"]](spec)
        flops = warm_up(step, spec)
        reply({"nets": _net_facts(nets), "flops_per_iter": flops,
               "threads": torch.get_num_threads()})  # fmt: skip
        for line in sys.stdin:
            command, _, count = line.strip().partition(" ")
            if command == "time":
                reply({"seconds": _timed(step, int(count))})
            elif command == "profile":
                reply({"profile": _profile(step, int(count), spec["top"])})
            else:
                break
    peak = {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if torch.cuda.is_initialized():
        peak["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    reply(peak)


# ---------------------------------------------------------------------------------------- parent


class Worker:
    """One implementation in its own process, built and warmed up once, then run on request."""

    def __init__(self, spec: dict[str, Any]) -> None:
        threads = str(spec["threads"])
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        env["PYTHONPATH"] = str(HERE_SRC) + os.pathsep + env.get("PYTHONPATH", "")
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
        )  # fmt: skip

    def answer(self) -> dict[str, Any]:
        """The worker's next marked reply, or {"error": the last line of its stderr}."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(RESULT_MARKER):
                return json.loads(line[len(RESULT_MARKER) :])
        self.proc.wait()
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().splitlines() if line.strip()]
        print("\n".join(lines[-20:]), file=sys.stderr)
        return {"error": lines[-1] if lines else f"exit status {self.proc.returncode}"}

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command and wait for its reply."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone; answer() reports why
        return self.answer()

    def close(self) -> dict[str, Any]:
        """Tell the worker to quit; its last reply (peak RSS)."""
        last = self.ask("quit") if self.proc.poll() is None else {}
        self.proc.wait()
        self.stderr.close()
        return last


def available_impls(args: argparse.Namespace) -> list[str]:
    """gankit and each reference whose folder holds its files (a message for each one skipped)."""
    impls = [IMPLS[0]]
    for impl in IMPLS[1:]:
        folder = getattr(args, impl)
        if reference_files(impl, folder) is None:
            wanted = " and ".join(REFERENCE_FILES[impl][0].values())
            print(f"skipping {impl}: no {wanted} under --{impl} {folder}", file=sys.stderr)
        else:
            impls.append(impl)
    return impls


def source_note(impl: str, folder: str) -> str:
    """Where a reference was read from: folder, SOURCE.txt's first line, short file hashes."""
    files = reference_files(impl, folder) or {}
    hashes = ", ".join(
        f"{p.name} sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:12]}" for p in files.values()
    )
    source = Path(folder) / "SOURCE.txt"
    origin = f"; {source.read_text().splitlines()[0]}" if source.is_file() else ""
    return f"{impl}: `{Path(folder).resolve()}` ({hashes}{origin})"


def img_per_s(seconds: list[float]) -> float:
    """One measurement's throughput: its iterations over their total seconds."""
    return len(seconds) / sum(seconds)


def network_check(info: dict[str, dict]) -> list[str]:
    """Lines comparing each side's G and D with gankit's: parameter counts (and shapes)."""
    facts = {impl: i["nets"] for impl, i in info.items() if "nets" in i}
    lines = []
    for net in ("G", "D"):
        counts = ", ".join(f"{impl} {f[net]['params']:,}" for impl, f in facts.items())
        lines.append(f"- {net} parameters: {counts}")
    ours = facts.get("gankit")
    for impl, theirs in facts.items():
        if impl == "gankit" or ours is None:
            continue
        same = all(ours[n]["params"] == theirs[n]["params"] for n in ("G", "D"))
        shapes = all(ours[n]["shapes"] == theirs[n]["shapes"] for n in ("G", "D"))
        lines.append(
            f"- gankit vs {impl}: parameter counts {'match' if same else 'MISMATCH'}; parameter "
            f"shapes in order {'identical' if shapes else 'differ'}"
        )
    return lines


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(times: dict[str, list[list[float]]], info: dict[str, dict]) -> str:
    """Markdown: per implementation img/s over the rounds and gankit's speed over it."""
    lines = [
        "| impl | img/s median | img/s min | img/s max | s/iter (median) | gankit speed-up "
        "| rounds | G / D params (M) | GFLOP/iter | GFLOP/s | peak RSS GiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    speeds = {impl: [img_per_s(s) for s in rounds] for impl, rounds in times.items() if rounds}
    medians = {impl: statistics.median(v) for impl, v in speeds.items()}
    for impl in times:
        if impl not in speeds:
            lines.append(f"| {impl} | failed | | | | | | | | | |")
            continue
        median, ours, facts = medians[impl], medians.get("gankit"), info[impl]
        ratio = ours / median if ours and impl != "gankit" else None
        flops = facts.get("flops_per_iter")
        gflop = None if flops is None else flops / 1e9
        g, d = facts["nets"]["G"]["params"] / 1e6, facts["nets"]["D"]["params"] / 1e6
        lines.append(
            f"| {impl} | {median:.3f} | {min(speeds[impl]):.3f} | {max(speeds[impl]):.3f} "
            f"| {1 / median:.2f} | {_fmt(ratio)} | {len(speeds[impl])} | {g:.3f} / {d:.3f} "
            f"| {_fmt(gflop, 1)} | {_fmt(None if gflop is None else gflop * median, 1)} "
            f"| {_fmt(facts.get('peak_rss_gib'))} |"
        )
    return "\n".join(lines)


GENERAL_NOTE = (
    "img/s = iterations/s (batch 1; one G step and one D step on an image of each domain); "
    "gankit speed-up = gankit's median img/s over the row's"
)
IMPL_NOTES = {
    "gankit": "`Trainer.step()` with its data path (loader, resize-and-crop and flips on the "
    "device); it runs each G's two passes over different inputs (translation and identity) "
    "as one batch of 2, and each D's real and fake as one batch of 2 (instance norm: the same "
    "numbers)",
    "official": "networks.py and image_pool.py unchanged, `optimize_parameters` written out call "
    "for call; fixed reals",
    "erik": "not the official networks: nearest Upsample + 3x3 conv instead of the transposed "
    "conv (4x the multiply-adds in the two up layers), a D with four stride-2 convs and a "
    "zero-padded last conv (score map 1/16 of the image; the official D's stride-1 256->512 "
    "conv runs at 1/8); widths 64; G's backward also computes D's weight gradients (its D stays "
    "trainable in the G step); its own Adam per D; fixed reals",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--official",
        default="/tmp/cgbench/official",
        help="junyanz/pytorch-CycleGAN-and-pix2pix checkout, or a folder with models/networks.py "
        "and util/image_pool.py (default: %(default)s; skipped when missing)",
    )
    p.add_argument(
        "--erik",
        default="/tmp/cgbench/erik",
        help="folder with PyTorch-GAN's implementations/cyclegan models.py and utils.py, or a "
        "PyTorch-GAN checkout (default: %(default)s; skipped when missing)",
    )
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument(
        "--blocks",
        type=int,
        default=None,
        help="residual blocks (default 9 at 256 px and up, 6 below)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads, every implementation")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for a GPU (every implementation)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per process")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per process")
    p.add_argument(
        "--preprocess",
        choices=("resize_and_crop", "none"),
        default="resize_and_crop",
        help="gankit's recipe.args.preprocess (the references get fixed tensors)",
    )
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument("--profile", action="store_true", help="also profile each implementation")
    p.add_argument("--top", type=int, default=20, help="operators listed per profile")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.blocks is None:
        args.blocks = 9 if args.resolution >= 256 else 6
    if min(args.iters, args.rounds, args.threads) < 1 or args.warmup < 0:
        p.error("--iters, --rounds and --threads must be >= 1, --warmup >= 0")
    if args.resolution < 32 or args.resolution % 16:
        p.error("--resolution must be a multiple of 16 of at least 32 (the PatchGANs' score maps)")
    return args


def start_workers(
    impls: list[str], base: dict[str, Any]
) -> tuple[dict[str, Worker], dict[str, dict]]:
    """One warmed-up worker per implementation, started one after the other (so no two build or
    warm up at once), and what each said when ready; those that fail are reported, left out."""
    workers, info = {}, {}
    for impl in impls:
        worker = Worker({**base, "impl": impl})
        ready = worker.answer()
        if "error" in ready:
            print(f"{impl} failed to start: {ready['error']}", file=sys.stderr)
            worker.close()
            continue
        workers[impl], info[impl] = worker, ready
    return workers, info


def run_rounds(
    args: argparse.Namespace, workers: dict[str, Worker]
) -> dict[str, list[list[float]]]:
    """`--rounds` rounds of `--iters` timed iterations per implementation, the order rotating."""
    impls = list(workers)
    times: dict[str, list[list[float]]] = {impl: [] for impl in impls}
    for r in range(args.rounds):
        for impl in impls[r % len(impls) :] + impls[: r % len(impls)]:
            time.sleep(PAUSE_S)  # the previous worker's threads settle
            result = workers[impl].ask(f"time {args.iters}")
            if "error" in result:
                print(f"round {r} {impl}: {result['error']}", file=sys.stderr)
                continue
            times[impl].append(result["seconds"])
            print(f"round {r} {impl}: {img_per_s(result['seconds']):.3f} img/s", file=sys.stderr)
    return times


def report(args: argparse.Namespace, times: dict, info: dict, load: dict) -> str:
    """The Markdown report: command, machine, settings, sources, network check, table, notes."""
    started, before, after = load["started"], load["before"], load["after"]
    impls = list(times)
    sources = [source_note(i, getattr(args, i)) for i in impls if i != "gankit"]
    lines = [
        f"- command: `python {shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- machine: {machine_description(args.threads, args.device)}",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) before: "
        f"{' / '.join(f'{x:.2f}' for x in before)}, after: {' / '.join(f'{x:.2f}' for x in after)}",
        f"- {args.resolution} px, {args.blocks} residual blocks, ngf = ndf = {WIDTH}, batch 1, "
        f"float32, {args.threads} torch thread(s); per implementation one process, "
        f"{args.warmup} warm-up iteration(s), then {args.rounds} round(s) of {args.iters} timed "
        f"iterations, the order rotating; gankit preprocess `{args.preprocess}`",
        "- torch threads each process reported: "
        + ", ".join(f"{impl} {info[impl]['threads']}" for impl in impls),
        *(f"- {s}" for s in sources),
        "",
        "Networks check:",
        "",
        *network_check(info),
        "",
        format_table(times, info),
        "",
        f"- {GENERAL_NOTE}",
        *(f"- {impl}: {IMPL_NOTES[impl]}" for impl in impls),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Alternate the implementations over the rounds and print a Markdown report."""
    args = parse_args(argv)
    if args.worker:
        serve(json.loads(args.worker))
        return
    base: dict[str, Any] = {
        "resolution": args.resolution, "blocks": args.blocks, "threads": args.threads,
        "warmup": args.warmup, "preprocess": args.preprocess, "top": args.top,
        "official": str(Path(args.official).resolve()), "erik": str(Path(args.erik).resolve()),
        "count_flops": not args.no_flops and args.warmup > 0, "device": args.device,
    }  # fmt: skip
    load = {"before": os.getloadavg(), "started": datetime.datetime.now(datetime.timezone.utc)}
    workers, info = start_workers(available_impls(args), base)
    print("\n".join(network_check(info)), file=sys.stderr)
    times = run_rounds(args, workers)
    load["after"] = os.getloadavg()
    profiles = (
        {i: w.ask(f"profile {args.iters}") for i, w in workers.items()} if args.profile else {}
    )
    for impl, worker in workers.items():
        info[impl].update(worker.close())
    text = report(args, times, info, load)
    for impl, prof in profiles.items():
        body = prof.get("profile") or prof.get("error")
        text += f"\n\nProfile, {impl} ({args.iters} iterations):\n\n```\n{body}\n```"
    print(text)
    if args.json:
        blob = {"times": times, "info": info, "profiles": profiles}
        args.json.write_text(json.dumps(blob))


if __name__ == "__main__":
    main()
