"""train_scripts/kernel_step_oracles.py: the oracle latents recover a known kernel well above a blob's floor,
and the script refuses settings it cannot measure."""

from __future__ import annotations

import json

import pytest

from conftest import estimator_dev_set, load_train_script


@pytest.fixture(scope="module")
def dev_set(tmp_path_factory):
    return estimator_dev_set(tmp_path_factory.mktemp("kernel-step-oracles"))


def test_sharp_and_deconvolved_latents_find_the_kernel_and_a_blob_does_not(dev_set, tmp_path, capsys) -> None:
    script = load_train_script("kernel_step_oracles")
    rows = script.main(["--data", str(dev_set), "--estimate", "--json", str(tmp_path / "rows.json")])
    assert len(rows) == 4 and json.loads((tmp_path / "rows.json").read_text()) == rows
    for row in rows:
        assert set(row) == {"image", "blob", "sharp", "l0", "deconvolved", "estimate"}
        assert all(0 <= row[key] <= 1 for key in row if key != "image")
        assert row["sharp"] >= 0.8 and row["deconvolved"] >= 0.8
        assert row["blob"] < min(row["sharp"], row["deconvolved"]) - 0.2
    assert "mean of 4 cases" in capsys.readouterr().out


def test_a_pyramid_level_and_one_kernel(dev_set) -> None:
    script = load_train_script("kernel_step_oracles")
    rows = script.main(["--data", str(dev_set), "--scale", "0.5", "--kernel", "kernel_02"])
    assert [row["image"].endswith("kernel_02") for row in rows] == [True, True]
    assert "estimate" not in rows[0]


@pytest.mark.parametrize("argv", [["--scale", "0"], ["--scale", "1.5"], ["--scale", "0.5", "--estimate"],
                                  ["--l0-weight", "0"], ["--kernel", "kernel_99"]])
def test_settings_it_cannot_measure_are_refused(dev_set, argv, capsys) -> None:
    script = load_train_script("kernel_step_oracles")
    with pytest.raises(SystemExit):
        script.main(["--data", str(dev_set), *argv])
    assert "error:" in capsys.readouterr().err
