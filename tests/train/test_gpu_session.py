"""train_scripts/gpu_session.sh end to end on the CPU with a seconds-long budget, as the lent GPU runs it: every
recipe trains, probes its own rate, exports, and the exports come packed as the device tool returns them. The
lent machine's Python has no `datasets` and no gradio, so this run blocks both."""

import json
import os
import subprocess
import sys
import tarfile
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganzoo
from ganzoo.training import ScheduleProbe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["srresnet", "srgan", "deblur-unet", "deblurgan"]


def write_images(folder: Path, names: list[str], size: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        smooth = rng.random((size // 8, size // 8, 3))
        image = Image.fromarray((smooth * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        image.save(folder / name)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("gpu-session")
    data = tmp / "data"
    write_images(data / "sr" / "train" / "bsds500_train", ["a.png", "b.png", "c.png"], 128, seed=0)
    (data / "sr" / "bench" / "Set5").mkdir(parents=True)  # an evaluation image among the training images
    Image.open(data / "sr" / "train" / "bsds500_train" / "a.png").save(data / "sr" / "bench" / "Set5" / "copy.png")
    held_out = [line for line in (ROOT / "train_scripts" / "bsds500_test_held_out.txt").read_text().splitlines()
                if not line.startswith("#")]
    write_images(data / "sr" / "train" / "bsds500_test", held_out[:3] + ["999001.jpg", "999002.jpg"], 128, seed=1)
    blocker = tmp / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['datasets'] = None\nsys.modules['gradio'] = None\n")
    out, runs = tmp / "out", tmp / "runs"
    env = {**os.environ, "OUT": str(out), "DATA": str(data), "RUNS": str(runs), "MINUTES": "0.3", "PROBE": "1",
           "TINY": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(blocker),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "train_scripts/gpu_session.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    return out, runs, result


def test_every_recipe_trains_exports_and_is_packed_for_the_device_tool(session, tmp_path):
    out, runs, result = session
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{r}.tar" for r in RECIPES] + ["logs.tar"])
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    for recipe in RECIPES:
        with tarfile.open(out / f"{recipe}.tar") as tar:
            tar.extractall(tmp_path / recipe, filter="data")
        model = ganzoo.load(tmp_path / recipe / "final")
        record = json.loads((tmp_path / recipe / "final.run.json").read_text())
        assert record, recipe
        assert type(model).__name__ in {"SRResNet", "DeblurUNet"}, recipe


def test_the_probe_sets_each_schedule_and_the_held_out_images_are_left_out(session):
    out, runs, result = session
    assert result.returncode == 0, result.stderr[-3000:]
    view = runs / "data" / "bsds500_test-without-held-out"  # the three held-out names are gone
    assert sorted(p.name for p in view.iterdir()) == ["999001.jpg", "999002.jpg"]
    for recipe in ("srresnet", "deblur-unet"):  # the fastest two reach the probe's end within the budget
        rows = [json.loads(line) for line in (runs / recipe / "log.jsonl").read_text().splitlines()]
        planned = [row["planned_steps"] for row in rows if "planned_steps" in row]
        assert len(planned) == 1 and planned[0] >= 1, recipe
        assert rows[-1]["step"] <= planned[0], recipe
    record = json.loads((runs / "deblur-unet" / "final.run.json").read_text())
    assert record["data"]["held_out_images_dropped"] == 1  # Set5's copy of a.png: deblurring never trains on it
    with tarfile.open(out / "logs.tar") as tar:
        names = tar.getnames()
    assert "logs/env.txt" in names and "logs/srresnet.log" in names


def test_schedule_probe_plans_the_steps_the_remaining_time_allows():
    args = SimpleNamespace(fit_schedule_to_time=20.0, time_limit=1.0, max_steps=1_000_000)
    probe = ScheduleProbe(args, margin=1.0)
    assert not probe.update(3, 2.0)  # the warm-up ends at step 3, at 2 s: the timing starts there
    assert not probe.update(100, 11.7)  # before 20 s: no plan yet
    assert probe.update(183, 20.0)  # 180 steps in 18 s: 10 steps/s, 40 s left
    assert probe.rate == pytest.approx(10.0)
    assert args.max_steps == 183 + 400


def test_schedule_probe_never_raises_max_steps_nor_plans_behind_the_current_step():
    args = SimpleNamespace(fit_schedule_to_time=1.0, time_limit=1.0, max_steps=50)
    probe = ScheduleProbe(args)
    probe.update(3, 0.5)
    assert probe.update(40, 2.0) and args.max_steps == 50  # the rate allows thousands: --max-steps caps it
    late = SimpleNamespace(fit_schedule_to_time=1.0, time_limit=0.01, max_steps=1000)
    probe = ScheduleProbe(late)
    probe.update(3, 0.1)
    assert probe.update(9, 5.0) and late.max_steps == 10  # out of time already: stop after the next step


def test_schedule_probe_on_a_resumed_run_skips_that_run_s_own_warm_up():
    args = SimpleNamespace(fit_schedule_to_time=10.0, time_limit=1.0, max_steps=1_000_000)
    probe = ScheduleProbe(args, margin=1.0, start_step=5000)
    assert not probe.update(5001, 4.0) and not probe.update(5002, 7.0)  # cold steps after the resume
    assert not probe.update(5003, 8.0)  # the third: the timing starts here
    assert probe.update(5023, 10.0) and probe.rate == pytest.approx(10.0)  # 20 steps in 2 s, not 22 in 10


def test_the_held_out_list_is_the_large_deblurring_set():
    """The large set is `make-blur-set --first 40` of BSDS500-test: its first 40 images sorted by name."""
    folder = ROOT.parent / "shared" / "data" / "sr" / "train" / "bsds500_test"
    if not folder.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    listed = [line for line in (ROOT / "train_scripts" / "bsds500_test_held_out.txt").read_text().splitlines()
              if not line.startswith("#")]
    assert listed == sorted(p.name for p in folder.iterdir())[:40]
