"""train_scripts/choose_network_check.py: the grid that chose auto's network check scores what auto does."""

from __future__ import annotations

import json
import math

import pytest

from ganzoo import cli, pipelines

from conftest import estimator_dev_set, load_train_script


def test_the_grid_at_the_pipelines_thresholds_is_what_evaluate_auto_measures(tmp_path, capsys) -> None:
    """The script scores any thresholds from one pass (no second estimate); at those in `ganzoo.pipelines` its
    mean gain is the one `ganzoo evaluate deblur --method auto` measures on the same set, and with both conditions
    off it is auto without the check: the deconvolution where the estimate is trusted, else the network."""
    script = load_train_script("choose_network_check")
    dev = estimator_dev_set(tmp_path)
    away, towards = pipelines.AWAY_FROM_NETWORK_DB, pipelines.TOWARDS_NETWORK_DB
    results = script.main(["--data", str(dev), "--away", str(away), "inf", "--towards", str(towards), "inf",
                           "--json", str(tmp_path / "rows.json")])
    assert [(r["away"], r["towards"]) for r in results] == [(away, towards), (away, math.inf),
                                                            (math.inf, towards), (math.inf, math.inf)]
    capsys.readouterr()
    assert cli.main(["evaluate", "deblur", "--method", "auto", "--data", str(dev), "--no-reference", "--no-aligned",
                     "--device", "cpu", "--precision", "fp32", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["n"] == 4
    assert results[0]["all"] == pytest.approx(measured["psnr"] - measured["psnr_input"], abs=1e-6)
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert any(r["deconvolution"] is not None for r in rows)
    without_check = [r["deconvolution"] if r["deconvolution"] is not None else r["network"] for r in rows]
    assert results[3]["all"] == pytest.approx(sum(without_check) / len(without_check))
    again = script.main(["--measured", str(tmp_path / "rows.json"), "--away", str(away), "--towards", str(towards)])
    assert again == results[:1]  # scored again from the saved measures, without estimating


def test_one_kernels_entry_per_set(tmp_path, capsys) -> None:
    script = load_train_script("choose_network_check")
    with pytest.raises(SystemExit):
        script.main(["--data", str(tmp_path / "a"), str(tmp_path / "b"), "--kernels", "NONE"])
    assert "one --kernels entry" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([])
    assert "--measured" in capsys.readouterr().err
