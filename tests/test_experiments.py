"""The GAN-family experiments in benchmarks/ run end to end in --quick mode and print their table."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_mode_collapse_quick_produces_a_row_per_recipe_and_dataset(tmp_path: Path) -> None:
    module = _load("mode_collapse")
    table = module.main(
        [
            "--quick",
            "--jobs",
            "1",
            "--recipes",
            "gan,gan+pack4",
            "--recipe-arg",
            "lr_rampdown=0.5",
            "--workdir",
            str(tmp_path),
        ]
    )
    rows = _rows(table)
    mine = [r for r in rows if r[1].startswith("gankit")]
    assert [(r[0], r[1].split()[1]) for r in mine] == [
        ("ring8", "gan"),
        ("ring8", "gan+pack4"),
        ("grid25", "gan"),
        ("grid25", "gan+pack4"),
    ]
    for row in mine:
        modes, hq = float(row[2]), float(row[3])
        limit = 8 if row[0] == "ring8" else 25
        assert 0 <= modes <= limit and 0 <= hq <= 100
    assert any("PacGAN4" in r[1] and r[2] == "7.8" for r in rows if r[0] == "ring8")
    # Every run left its pictures: the final scatter over the mixture and the loss curves.
    run = tmp_path / "mode_collapse" / "ring8-gan+pack4-seed0"
    assert (run / "samples" / "final.png").is_file() and (run / "plots" / "losses.png").is_file()
    config = (run / "config.yaml").read_text()
    assert "lr_rampdown: 0.5" in config and "pack: 4" in config
    assert "batch_size: 400" in config  # PacGAN's minibatch: 100 packs of 4 points


def test_mode_collapse_batch_packs_the_same_points_into_fewer_inputs(tmp_path: Path) -> None:
    module = _load("mode_collapse")
    args = ["--quick", "--jobs", "1", "--datasets", "ring8", "--workdir", str(tmp_path)]
    table = module.main([*args, "--recipes", "gan+pack2", "--batch", "100"])
    [row] = [r for r in _rows(table) if r[1].startswith("gankit")]
    assert row[1] == "gankit gan+pack2 (1 seed, 0.3 kimg, batch 100)"
    config = (tmp_path / "mode_collapse" / "ring8-gan+pack2-seed0" / "config.yaml").read_text()
    assert "batch_size: 100" in config and "pack: 2" in config


def test_mode_collapse_trains_pacgans_widths_unless_asked_for_gankits(tmp_path: Path) -> None:
    import yaml

    module = _load("mode_collapse")
    args = ["--quick", "--jobs", "1", "--datasets", "ring8", "--recipes", "gan"]
    module.main([*args, "--workdir", str(tmp_path)])
    table = module.main([*args, "--workdir", str(tmp_path), "--nets", "gankit"])
    [row] = [r for r in _rows(table) if r[1].startswith("gankit")]
    assert row[1] == "gankit gan (1 seed, 0.3 kimg, gankit nets)"
    runs = tmp_path / "mode_collapse"
    protocol = yaml.safe_load((runs / "ring8-gan-seed0" / "config.yaml").read_text())
    assert protocol["model"]["arch"]["g_hidden"] == [400] * 4
    assert protocol["model"]["arch"]["d_hidden"] == [200] * 3
    narrow = yaml.safe_load((runs / "ring8-gan-gankit-nets-seed0" / "config.yaml").read_text())
    assert narrow["model"]["arch"]["g_hidden"] == [128] * 8
    assert narrow["model"]["arch"]["d_hidden"] == [128] * 3


def test_mode_collapse_datasets_picks_the_mixtures_and_refuses_unknown_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load("mode_collapse")
    common = ["--quick", "--jobs", "1", "--recipes", "gan", "--workdir", str(tmp_path)]
    rows = _rows(module.main([*common, "--datasets", "ring8"]))
    assert {r[0] for r in rows} == {"ring8"}
    assert not (tmp_path / "mode_collapse" / "grid25-gan-seed0").exists()
    with pytest.raises(SystemExit):
        module.main([*common, "--datasets", "ring8,spiral"])
    assert "unknown ['spiral']" in capsys.readouterr().err


class _JobsSeen(Exception):
    pass


@pytest.mark.parametrize(
    ("extra", "expected"),
    [([], {"ring8": 11.0, "grid25": 22.0}), (["--kimg", "5"], {"ring8": 5.0, "grid25": 5.0})],
)
def test_mode_collapse_gives_each_mixture_its_own_budget_unless_kimg_is_given(
    extra: list[str], expected: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gankit.recipes import gan

    module = _load("mode_collapse")
    monkeypatch.setitem(gan.BUDGETS_KIMG, "ring8", 11.0)
    monkeypatch.setitem(gan.BUDGETS_KIMG, "grid25", 22.0)
    seen: list[dict] = []

    def record(_fn: object, jobs: list[dict], _n: int) -> None:
        seen.extend(jobs)
        raise _JobsSeen

    monkeypatch.setattr(module, "run_jobs", record)
    with pytest.raises(_JobsSeen):
        module.main(["--recipes", "gan", "--seeds", "1", *extra])
    budgets = {job["data"]: job["kimg"] for job in seen}
    assert budgets == expected


def test_mode_collapse_refuses_a_batch_the_packing_cannot_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = _load("mode_collapse")
    with pytest.raises(SystemExit):
        module.parse_args(["--recipes", "gan,gan+pack4", "--batch", "10"])
    assert "--batch 10: gan+pack4 packs 4 points per D input; use a multiple of 4" in (
        capsys.readouterr().err
    )
    assert module.parse_args(["--recipes", "gan,gan+pack4", "--batch", "100"]).batch == 100


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--kimg", "-5", "expected a number above 0, got '-5'"),
        ("--kimg", "nan", "expected a number above 0, got 'nan'"),
        ("--seeds", "0", "expected a whole number >= 1, got '0'"),
        ("--jobs", "two", "expected a whole number >= 1, got 'two'"),
    ],
)
def test_mode_collapse_refuses_bad_budgets_and_counts_before_any_run(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load("mode_collapse")
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args([option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["stacked_mnist", "mnist_quality"])
def test_mnist_experiments_quick_produce_their_tables(
    script: str, tmp_path: Path, shared_data: Path
) -> None:
    module = _load(script)
    recipes = "dcgan+pack2" if script == "stacked_mnist" else "gan,cgan+dcgan,sngan"
    table = module.main(
        [
            "--quick",
            "--jobs",
            "1",
            "--recipes",
            recipes,
            "--workdir",
            str(tmp_path),
            "--data-root",
            str(shared_data),
            "--device",
            "cpu",
        ]
    )
    rows = _rows(table)
    run_name = "dcgan+pack2-seed0" if script == "stacked_mnist" else "gan"
    assert "device: cpu" in (tmp_path / script / run_name / "config.yaml").read_text()
    if script == "stacked_mnist":
        modes = float(rows[0][1])
        assert rows[0][0].startswith("gankit dcgan+pack2") and 1 <= modes <= 1000
        assert float(rows[0][2]) >= 0
        assert any(r[0].startswith("PacDCGAN2") for r in rows)
    else:
        by_recipe = {r[0]: r for r in rows}
        assert float(by_recipe["gan"][2]) > 0  # clf-FID of a barely trained G is positive
        assert re.fullmatch(r"-?\d+ \+- \d+", by_recipe["gan"][4])  # Parzen LL +- std err
        assert 0 <= float(by_recipe["cgan+dcgan"][5]) <= 100  # class accuracy in percent
        config = (tmp_path / "mnist_quality" / "cgan+dcgan" / "config.yaml").read_text()
        assert "name: dcgan" in config  # the method's model, not the recipe's MLP
        # sngan's ResNet has no 28x28 layout: it trains on MNIST padded to 32 and is scored.
        sngan = yaml.safe_load((tmp_path / "mnist_quality" / "sngan" / "config.yaml").read_text())
        assert (sngan["model"]["name"], sngan["data"]["resolution"]) == ("resnet", 32)
        assert float(by_recipe["sngan"][2]) > 0


def test_stacked_mnist_budget_is_the_recipes_unless_kimg_or_minutes_are_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = _load("stacked_mnist")
    budget = module.budget_of
    assert budget(module.parse_args([]), "dcgan+pack2") == (3000.0, None)  # gankit train's default
    assert budget(module.parse_args(["--kimg", "500"]), "dcgan") == (500.0, None)
    assert budget(module.parse_args(["--minutes", "7"]), "dcgan") == (1e9, 7.0)
    assert budget(module.parse_args(["--quick", "--kimg", "9"]), "dcgan") == (0.256, None)
    assert module.budget_label(module.parse_args([]), [(3000.0, None)]) == "3000 kimg per run"
    assert list(module.seeds_of(module.parse_args(["--seeds", "3", "--first-seed", "2"]))) == [
        2,
        3,
        4,
    ]
    assert list(module.seeds_of(module.parse_args(["--quick", "--seeds", "3"]))) == [0]
    with pytest.raises(SystemExit):
        module.parse_args(["--kimg", "500", "--minutes", "7"])
    assert "not allowed with argument" in capsys.readouterr().err


def _nimg_and_resumes(run: Path) -> tuple[int, int]:
    from gankit.train import checkpoint as ckpt

    _, state = ckpt.load_latest(run)
    return int(state["cur_nimg"]), (run / "log.txt").read_text().count("resumed from")


def test_experiment_runs_continue_after_an_interruption_and_are_not_retrained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-running an experiment continues its stopped runs exactly where they stopped."""
    import torch

    from gankit.train import checkpoint as ckpt
    from gankit.train.loop import Trainer

    experiments = _load("experiments")
    job = {"kimg": 0.4, "device": "cpu", "recipe_args": {"lr_rampdown": 0.0}}  # 4 steps of 100
    out = tmp_path / "run"
    step = Trainer.step

    def step_then_stop(self: Trainer) -> None:  # what a first Ctrl-C does after an iteration
        step(self)
        self.stop_requested = True

    def train_job(j: dict) -> dict:
        return {"run": str(experiments.train_run("gan", "ring8", out, **j))}

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "step", step_then_stop)
        with pytest.raises(SystemExit, match=r"stopped at 0.1 of 0.4 kimg; run the same command"):
            experiments.run_jobs(train_job, [job], 1)
    assert _nimg_and_resumes(out) == (100, 0)

    experiments.train_run("gan", "ring8", out, **job)  # continues: 3 more steps
    assert _nimg_and_resumes(out) == (400, 1)
    experiments.train_run("gan", "ring8", out, **job)  # finished: nothing more to train
    assert _nimg_and_resumes(out) == (400, 2)
    straight = experiments.train_run("gan", "ring8", tmp_path / "straight", **job)
    resumed_G, straight_G = (ckpt.load_latest(r)[1]["nets"]["G"] for r in (out, straight))
    assert all(torch.equal(resumed_G[k], straight_G[k]) for k in straight_G)

    experiments.train_run("gan", "ring8", out, **{**job, "seed": 1})  # another job: starts over
    assert _nimg_and_resumes(out) == (400, 0)
    assert '"seed": 1' in (out / "job.json").read_text()
    # the same job with a preset changed in the code: starts over with the new values
    from dataclasses import replace

    from gankit.recipes import gan

    points = gan.GAN.points
    monkeypatch.setattr(gan.GAN, "points", replace(points, args=replace(points.args, lr=3e-4)))
    experiments.train_run("gan", "ring8", out, **{**job, "seed": 1})
    assert _nimg_and_resumes(out) == (400, 0)
    assert '"lr": 0.0003' in (out / "job.json").read_text()
    # float32 jobs leave amp out of job.json, so runs saved before --amp existed still continue
    assert '"amp"' not in (out / "job.json").read_text()
    experiments.train_run("gan", "ring8", out, **{**job, "seed": 1, "amp": "bf16"})
    assert _nimg_and_resumes(out) == (400, 0)  # another precision is another job
    assert '"amp": "bf16"' in (out / "job.json").read_text()
    assert "amp: bf16" in (out / "config.yaml").read_text()


@pytest.mark.parametrize("device", ["gpu", "cuda:x"])
def test_experiments_refuse_an_unknown_device_when_parsing(
    device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _load("stacked_mnist").parse_args(["--device", device])
    assert (
        f"--device {device!r} is not a device; use auto, cpu, cuda or cuda:N"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("gan", ("gan", None, {})),
        ("gan+pack4", ("gan", None, {"pack": 4})),
        ("cgan+dcgan", ("cgan", "dcgan", {})),
        ("wgan-gp+resnet+pack2", ("wgan-gp", "resnet", {"pack": 2})),
    ],
)
def test_methods_name_a_recipe_a_model_and_a_packing(method: str, expected: tuple) -> None:
    assert _load("experiments").parse_method(method) == expected


@pytest.mark.parametrize("method", ["gan+pack", "gan+unet", "gan+dcgan+mlp"])
def test_unknown_method_suffixes_say_what_is_expected(method: str) -> None:
    with pytest.raises(SystemExit, match=r"RECIPE\[\+MODEL\]\[\+packM\]"):
        _load("experiments").parse_method(method)


_NAPPER = """
import os, sys, time
sys.path.insert(0, {bench!r})
from experiments import run_jobs

def nap(job):
    with open(os.path.join({out!r}, str(os.getpid())), "w"):
        pass
    time.sleep(120)
    return {{}}

if __name__ == "__main__":
    run_jobs(nap, [{{"n": 0}}, {{"n": 1}}], 2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_experiment_takes_its_worker_processes_with_it(tmp_path: Path) -> None:
    script = tmp_path / "napper.py"
    script.write_text(_NAPPER.format(bench=str(BENCHMARKS), out=str(tmp_path)))
    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("[0-9]*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in tmp_path.glob("[0-9]*")]
    assert len(workers) == 2, "the two jobs never started"
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


_TRAINER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
from experiments import run_jobs, train_run
from gankit.train.loop import Trainer

_step = Trainer.step


def step_and_mark(self):  # (in the workers) a file that says the loop is running
    _step(self)
    (self.run_dir / "stepping").touch()
    time.sleep(0.01)


Trainer.step = step_and_mark


def train(job):
    train_run("gan", "ring8", Path(job["out"]), seed=job["seed"], kimg=1e4, device="cpu")
    return {{}}


if __name__ == "__main__":
    run_jobs(train, [{{"seed": s, "out": str(Path({out!r}) / f"seed{{s}}")}} for s in range(3)], 2)
"""


@pytest.mark.slow
@pytest.mark.parametrize("to", ["process group", "main process"])
def test_ctrl_c_stops_a_parallel_experiment_after_each_run_saved_a_snapshot(
    tmp_path: Path, to: str
) -> None:
    """Ctrl-C reaches the whole process group, `kill -INT PID` the main process alone, which
    passes it on: either way each running job snapshots where it stopped, the job not started
    is skipped, and the experiment ends with the message to re-run it."""
    from gankit.train import checkpoint as ckpt

    script = tmp_path / "trainer.py"
    script.write_text(_TRAINER.format(bench=str(BENCHMARKS), out=str(tmp_path)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
        env=env,
    )
    runs = [tmp_path / "seed0", tmp_path / "seed1"]
    deadline = time.monotonic() + 120
    while not all((r / "stepping").exists() for r in runs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all((r / "stepping").exists() for r in runs), "the two runs never started training"
    if to == "process group":
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        parent.send_signal(signal.SIGINT)
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == 1, err
    assert "stopping: the runs save a snapshot first" in out
    assert re.search(r"experiment stopped: .*seed0 stopped at [0-9.]+ of 10000 kimg", err), err
    for run in runs:  # each stopped run has its stop snapshot (the periodic one is at 1000 kimg)
        _, state = ckpt.load_latest(run)
        assert 0 < state["cur_nimg"] < 10_000_000
    assert not (tmp_path / "seed2").exists()  # not started: skipped, not begun and cut short
    for name in ("seed0", "seed1"):  # the runs' console lines say which run they come from
        assert re.search(rf"^\[{name}\] snapshot ckpt-\d+\.pt at ", out, re.MULTILINE), out


def test_named_lines_pass_on_whole_lines_each_starting_with_the_run_name() -> None:
    sink = io.StringIO()
    writes: list[str] = []
    sink.write = lambda text: writes.append(text) or len(text)  # type: ignore[method-assign]
    with _load("experiments")._NamedLines(sink, "ring8-gan-seed0") as stream:
        stream.write("tick 1 kimg\nsnap")
        stream.write("shot at 2 kimg\n")
        stream.write("\ndone")
    assert writes == [  # one write per whole line; the unfinished last one when closed
        "[ring8-gan-seed0] tick 1 kimg\n",
        "[ring8-gan-seed0] snapshot at 2 kimg\n",
        "[ring8-gan-seed0] \n",
        "[ring8-gan-seed0] done\n",
    ]


def test_optimizer_step_quick_times_every_kernel() -> None:
    table = _load("optimizer_step").main(["--quick"])
    rows = _rows(table)
    assert [r[0].split(",")[0] for r in rows] == [
        "Adam step",
        "Adam step",
        "lsgan iteration on grid25 (D + G step)",
    ]
    for row in rows[:2]:
        assert all(float(ms) > 0 for ms in row[1:])
    assert float(rows[2][1]) > 0 and rows[2][2] == "" and float(rows[2][3]) > 0


def test_batchnorm_stats_quick_scores_every_kept_checkpoint_three_ways() -> None:
    module = _load("batchnorm_stats")
    rows = _rows(module.main(["--quick"]))
    # The three kept checkpoints of a 2-kimg run: snapshots every 1/4 of it.
    assert [(r[0], r[1]) for r in rows] == [("quick-ring8", k) for k in ("1", "1.5", "2")]
    for row in rows:
        for cell in (row[2], row[4]):
            match = re.fullmatch(r"(\d) modes, (\d+\.\d)%", cell)
            assert match and int(match[1]) <= 8 and float(match[2]) <= 100, cell
        assert re.fullmatch(r"\d(-\d)? modes, [\d.]+ / [\d.]+ / [\d.]+%", row[3]), row[3]


@pytest.mark.parametrize("script", ["mode_collapse", "stacked_mnist", "mnist_quality"])
def test_an_unknown_recipe_is_refused_before_any_run_starts(script: str, tmp_path: Path) -> None:
    module = _load(script)
    with pytest.raises(
        SystemExit, match=r"method 'gna': unknown recipe 'gna'; known recipes: .*wgan-gp"
    ):
        module.main(["--quick", "--recipes", "gan,gna", "--workdir", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()  # nothing trained, no classifier fitted


def test_the_stylegan_ladder_quick_scores_each_row(tmp_path: Path, shared_data: Path) -> None:
    module = _load("stylegan_ladder")
    args = ["--quick", "--jobs", "1", "--rows", "A,F", "--workdir", str(tmp_path)]
    table = module.main([*args, "--data-root", str(shared_data), "--device", "cpu"])
    rows = _rows(table)
    assert [r[0] for r in rows] == ["A ProGAN baseline", "F + mixing regularisation"]
    for row in rows:
        assert float(row[1]) > 0 and float(row[2]) > 0  # clf-FID, SWD of a barely trained G
        assert -1 <= float(row[3]) <= 1  # MS-SSIM
        assert float(row[4]) >= 0 and float(row[5]) >= 0  # PPL in W and Z
        assert re.fullmatch(r"\d+\.\d \(\d+\)", row[6])  # confident % (digits)
    configs = {
        r: (tmp_path / "stylegan-ladder" / f"row-{r}" / "config.yaml").read_text() for r in "AF"
    }
    assert "ladder: A" in configs["A"] and "loss: wgangp" in configs["A"]
    assert "ladder: F" in configs["F"] and "style_mixing_prob: 0.9" in configs["F"]
