"""train_scripts/compare_estimator_options.py: its defaults column is what `evaluate deblur --method auto` measures,
and a changed option really changes the estimator."""

from __future__ import annotations

import json

import pytest

from ganzoo import cli, kernel_estimation

from conftest import estimator_dev_set, load_train_script


@pytest.fixture(scope="module")
def dev_set(tmp_path_factory):
    return estimator_dev_set(tmp_path_factory.mktemp("estimator-options"))


def test_defaults_are_what_evaluate_auto_measures_and_an_option_changes_the_estimate(dev_set, tmp_path,
                                                                                     capsys) -> None:
    script = load_train_script("compare_estimator_options")
    rows = script.main(["--data", str(dev_set), "--option", "final_prune=0.05", "--option", "refinements=0",
                        "--json", str(tmp_path / "rows.json")])
    assert len(rows) == 4 and {"defaults", "final_prune=0.05 refinements=0"} <= set(rows[0])
    printed = capsys.readouterr().out
    assert "dev" in printed and "all" in printed
    assert cli.main(["evaluate", "deblur", "--method", "auto", "--data", str(dev_set), "--no-reference",
                     "--device", "cpu", "--precision", "fp32", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    defaults = [r["defaults"] for r in rows]
    assert sum(d["gain"] for d in defaults) / 4 == pytest.approx(measured["psnr"] - measured["psnr_input"], abs=1e-6)
    assert sum(d["aligned"] for d in defaults) / 4 == pytest.approx(measured["psnr_aligned"], abs=1e-6)
    changed = [r["final_prune=0.05 refinements=0"] for r in rows]
    assert [c["gain"] for c in changed] != [d["gain"] for d in defaults]
    assert all(0 <= d["similarity"] <= 1 for d in defaults + changed)


def test_parts_measure_every_case_once(dev_set, tmp_path, capsys) -> None:
    script = load_train_script("compare_estimator_options")
    whole = script.main(["--data", str(dev_set)])
    for part in (0, 1):
        script.main(["--data", str(dev_set), "--part", f"{part}/2", "--json", str(tmp_path / f"{part}.json")])
    merged = script.main(["--measured", str(tmp_path / "0.json"), str(tmp_path / "1.json")])
    assert sorted((r["image"], r["defaults"]["gain"]) for r in merged) == sorted(
        (r["image"], r["defaults"]["gain"]) for r in whole)


def test_options_are_read_as_their_fields_are_typed(capsys) -> None:
    script = load_train_script("compare_estimator_options")
    assert script.parse_option("lambda_starts=2e-3,8e-3") == ("lambda_starts", (2e-3, 8e-3))
    assert script.parse_option("refinements=2") == ("refinements", 2)
    assert script.parse_option("final_prune=0.1") == ("final_prune", 0.1)
    kernel_estimation.Options(**dict([script.parse_option("lambda_starts=4e-3")]))
    for bad in (["--data", "x", "--option", "no_such_option=1"], ["--data", "x", "--option", "final_prune"],
                ["--data", "x", "--part", "2/2"], []):
        with pytest.raises(SystemExit):
            script.main(bad)
        assert "error" in capsys.readouterr().err
