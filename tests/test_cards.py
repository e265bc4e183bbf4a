"""Model cards: Hub metadata the Hub indexes, a model-index equal to each card's table, cards kept on save/push."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

import ganzoo
from ganzoo.cards import BSDS500_LICENSE, MNIST_LICENSE, PAPERS, TEMPLATES_DIR, refresh_card
from ganzoo.hub import save_with_card
from ganzoo.models import MODEL_CLASSES, SRResNet
from ganzoo.registry import MODELS, read_config

from conftest import tiny_srresnet

BUNDLED = [m.name for m in MODELS.values() if m.is_bundled]
MEASURED = {"mnist-dcgan", "mnist-classifier", "srresnet-x4", "srgan-x4", "deblurgan", "deblur-unet",
            "style-mosaic", "style-candy", "style-starry-night", "style-udnie", "adain"}


def card_of(name: str) -> ModelCard:
    return ModelCard.load(MODELS[name].bundled_path / "README.md")


def table_value(text: str, row_name: str, column: str) -> float:
    """The number a card's markdown shows for (row, column): a table column, a metric/value row, or bold text."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip().strip("*").strip() for c in line.strip("|").split("|")] for line in lines]
    for i, row in enumerate(cells):
        if column in row and i + 2 < len(cells):  # a header row: find the data row below it
            for data in cells[i + 2:]:
                if data[0].startswith(row_name) and len(data) == len(row):
                    return float(data[row.index(column)].rstrip(" %"))
        if row and row[0] == column:  # a metric | value row
            return float(row[1].rstrip(" %"))
    found = re.search(re.escape(column) + r": \*\*([\d.]+) %\*\*", text)
    assert found, f"{row_name} / {column} is not in the card"
    return float(found.group(1))


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_card_metadata_is_what_the_hub_indexes(name):
    card = card_of(name)
    data = card.data.to_dict()
    cls = MODEL_CLASSES[read_config(str(MODELS[name].bundled_path))["_class_name"]]
    assert data["library_name"] == "ganzoo"
    assert data["pipeline_tag"] == cls._hub_mixin_info.model_card_data.pipeline_tag
    assert {"ganzoo", "gan"} <= set(data["tags"])
    trained_on_bsds500 = "bsds500" in card.text.lower().split("## training")[1]
    if trained_on_bsds500:
        assert {k: data.get(k) for k in BSDS500_LICENSE} == BSDS500_LICENSE
    if name.startswith("mnist"):
        assert data["license"] == MNIST_LICENSE, "weights trained on MNIST follow its CC BY-SA 3.0 terms"
        assert data["datasets"] == ["ylecun/mnist"]
    assert trained_on_bsds500 or name.startswith("mnist"), "every bundled model's licence follows its data"
    cited = [paper for title, paper in PAPERS.items() if title in card.text]
    assert cited or name == "mnist-classifier", "every card but the plain CNN scorer's cites its paper"
    for paper in cited:
        assert f"https://arxiv.org/abs/{paper}" in card.text
        assert f"arxiv:{paper}" in data["tags"]


def test_fine_tuned_models_name_their_base_model():
    assert card_of("srgan-x4").data.base_model == MODELS["srresnet-x4"].repo_id
    assert card_of("deblurgan").data.base_model == MODELS["deblur-unet"].repo_id
    for name in ("srresnet-x4", "mnist-dcgan"):
        assert card_of(name).data.base_model is None


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_model_index_equals_the_card_table(name):
    card = card_of(name)
    results = card.data.eval_results
    assert results, "a measured model has a model-index"
    assert card.data.model_name == name
    for result in results:
        assert result.metric_value == table_value(card.text, result.dataset_name, result.metric_name), result
    assert {r.dataset_name for r in results} >= ({"Set5", "Set14"} if "sr" in name else set())


@pytest.mark.parametrize("name", ["style-mosaic", "style-candy", "style-starry-night", "style-udnie", "adain"])
def test_style_cards_index_their_grid_and_structure_ssim(name):
    """The Hub shows the style models' measured grid score and structure SSIM, one result per photo set."""
    card = card_of(name)
    index = yaml.safe_load(card.content.split("---")[1])["model-index"]
    assert [entry["name"] for entry in index] == [name]
    results = index[0]["results"]
    rows = [line for line in card.text.splitlines() if line.startswith("| ") and line.endswith("` |")]
    assert len(results) == len(rows) > 0, "one result per row of the card's table"
    for result, row in zip(results, rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith(result["dataset"]["name"])
        assert {m["name"]: m["value"] for m in result["metrics"]} == {
            "grid (output)": float(cells[1]), "structure SSIM": float(cells[3])}
    if name == "adain":
        ssim = {r["dataset"]["name"]: r["metrics"][1]["value"] for r in results}
        assert ssim["reconstruction, content photos"] == 0.803 and ssim["reconstruction, Set14"] == 0.8
        assert {r["dataset"]["type"] for r in results if "Set14" in r["dataset"]["name"]} == {"eugenesiow/Set14"}


@pytest.mark.parametrize("name", BUNDLED)
def test_refreshing_a_bundled_card_changes_nothing(name, tmp_path):
    """The committed cards are what the metadata rules produce from their own text."""
    folder = tmp_path / name
    shutil.copytree(MODELS[name].bundled_path, folder)
    cls = MODEL_CLASSES[read_config(str(folder))["_class_name"]]
    refresh_card(folder, cls._hub_mixin_info.model_card_data, cls.__name__)
    assert (folder / "README.md").read_text() == (MODELS[name].bundled_path / "README.md").read_text()


def test_an_export_gets_its_model_index_from_the_benchmarks_it_shows(tmp_path):
    model = SRResNet(scale=4, num_blocks=1, channels=8)
    record = dict(model_name="srgan-x4", hardware="CPU", wall_time="1s", steps=2, eval_hardware="CPU",
                  images=3, train_dirs=["data/bsds500_train"], content_loss="pixel MSE", init_from=None,
                  args={"lr": "0.1", "batch_size": "2", "max_steps": "2", "mixed_precision": "no",
                        "time_limit": "None", "train_dirs": "['data/bsds500_train']",
                        "init_from": "runs/x/srresnet-x4/final"},
                  benchmarks={"Set5": dict(n=5, psnr_y=30.123456, ssim_y=0.87654321, psnr_rgb=28.5, ssim_rgb=0.8,
                                           command="ganzoo evaluate sr")})
    folder = save_with_card(model, tmp_path / "out", TEMPLATES_DIR / "super-resolution.md", **record)
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "other" and card.data.base_model == "ganzoo/srresnet-x4"
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"PSNR Y": 30.12, "SSIM Y": 0.8765, "PSNR RGB": 28.5, "SSIM RGB": 0.8}
    for result in card.data.eval_results:
        assert result.metric_value == table_value(card.text, "Set5", result.metric_name)


def test_save_pretrained_of_a_bundled_model_keeps_its_measured_card(tmp_path):
    model = ganzoo.load("srgan-x4")
    model.save_pretrained(tmp_path / "copy")
    measured = (MODELS["srgan-x4"].bundled_path / "README.md").read_text()
    assert (tmp_path / "copy" / "README.md").read_text() == measured
    with torch.no_grad():  # changed weights: the measured card no longer describes them
        next(model.parameters()).add_(1.0)
    model.save_pretrained(tmp_path / "changed")
    assert "No training record was attached" in (tmp_path / "changed" / "README.md").read_text()


@pytest.mark.parametrize("name", [n for n in BUNDLED if MODEL_CLASSES[read_config(str(MODELS[n].bundled_path))
                                                              ["_class_name"]].legacy_config_keys])
def test_a_bundled_model_with_a_renamed_config_key_saves_back_its_own_files(name, tmp_path):
    """The bundled configs use the current key names: a load and save gives back config and card unchanged."""
    ganzoo.load(name).save_pretrained(tmp_path)
    for file in ("config.json", "README.md"):
        assert (tmp_path / file).read_text() == (MODELS[name].bundled_path / file).read_text(), file


def test_push_to_hub_uploads_the_measured_card(tmp_path, monkeypatch):
    """push_to_hub re-saves into a temporary folder: the card it uploads must still be the measured one."""
    from huggingface_hub import hub_mixin

    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def upload_folder(self, folder_path, **kwargs):
            uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
            return "commit"

    monkeypatch.setattr(hub_mixin, "HfApi", FakeApi)
    ganzoo.load("mnist-classifier").push_to_hub("me/mnist-classifier")
    assert uploaded["README.md"] == (MODELS["mnist-classifier"].bundled_path / "README.md").read_bytes()


def test_sr_card_reports_the_grid_score_next_to_psnr(tmp_path):
    from ganzoo.hub import save_with_card
    from ganzoo.training import MODEL_CARDS_DIR

    scores = {"psnr_y": 30.0, "ssim_y": 0.8, "psnr_rgb": 28.0, "ssim_rgb": 0.7}
    benchmarks = {"Set5": {"n": 5, **scores, "grid": 0.42, "detail": 0.87, "command": "a"},
                  "Old": {"n": 1, **scores, "command": "b"}}  # measured before the grid and detail scores existed
    save_with_card(tiny_srresnet(), tmp_path, MODEL_CARDS_DIR / "super-resolution.md", benchmarks=benchmarks,
                   model_name="srgan-x4", args={}, metrics={}, steps=1, hardware="CPU", wall_time="1s",
                   train_dirs=[], images=1, content_loss="VGG54", init_from="x", eval_hardware="CPU")
    rows = [line for line in (tmp_path / "README.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[0].split(" | ")[5:7] == ["grid", "detail"]
    assert "| 0.42 | 0.87 |" in rows[2] and "| not measured | not measured |" in rows[3]
