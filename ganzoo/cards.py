"""Model cards: the family templates (package data) and the Hub metadata every card carries.

`card_metadata` turns a card's fields (the run record plus the benchmark numbers that
`train_scripts/bundle_model.py` measured) into YAML the Hub indexes: a licence that
follows the training data, `datasets` and evaluation datasets as Hub ids where they
exist, `base_model` for fine-tuned models, arXiv ids of the papers the card cites, and a
`model-index` whose values are the card table's numbers, rounded as the table shows them.
`hub.save_with_card` calls it, so every export and every re-bundle gets it;
`refresh_card` rebuilds the metadata of an already rendered card from its own table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ganzoo.catalog import MODELS

TEMPLATES_DIR = Path(__file__).parent / "model_cards"
GENERIC_TEMPLATE = TEMPLATES_DIR / "generic.md"

#: the family template that rendered a bundled model's card, by model class
TEMPLATE_FOR_CLASS = {
    "DigitGenerator": "mnist-dcgan.md",
    "DigitClassifier": "mnist-classifier.md",
    "SRResNet": "super-resolution.md",
    "DeblurGANGenerator": "deblurgan.md",
    "DeblurUNet": "deblur-unet.md",
    "Denoiser": "denoiser.md",
    "TransformerNet": "style.md",
    "AdaINStyleTransfer": "adain.md",
}

BSDS500_LICENSE = dict(
    license="other",
    license_name="bsds500-non-commercial-research",
    license_link="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html",
)
MNIST_LICENSE = "cc-by-sa-3.0"  # the MNIST files' terms (../shared/data/README.md), so weights trained on them follow
#: datasets the cards name -> their Hub ids
HUB_DATASETS = {"mnist": "ylecun/mnist", "set5": "eugenesiow/Set5", "set14": "eugenesiow/Set14"}
#: paper titles as the cards cite them (in *italics*) -> arXiv id
PAPERS = {
    "Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks": "1511.06434",
    "Conditional Generative Adversarial Nets": "1411.1784",
    "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network": "1609.04802",
    "DeblurGAN: Blind Motion Deblurring Using Conditional Adversarial Networks": "1711.07064",
    "Perceptual Losses for Real-Time Style Transfer and Super-Resolution": "1603.08155",
    "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization": "1703.06868",
    "Simple Baselines for Image Restoration": "2204.04676",
    "FFDNet: Toward a Fast and Flexible Solution for CNN based Image Denoising": "1710.04026",
    "Plug-and-Play Image Restoration with Deep Denoiser Prior": "2008.13751",
}
#: run arguments that name training data (folders, Hub ids)
_DATA_ARGS = re.compile(r"(^|_)(dirs?|data|dataset_name|train_data_dir)$")


# -- metadata -------------------------------------------------------------------------------------


def card_metadata(base: ModelCardData, template: str, fields: dict[str, Any], text: str = "") -> ModelCardData:
    """Hub metadata for a card rendered from `template` with `fields`; `text` is the card body (for papers)."""
    data = ModelCardData(**base.to_dict())
    args = {k: str(v) for k, v in (fields.get("args") or {}).items()}
    sources = " ".join(v for k, v in args.items() if _DATA_ARGS.search(k)) + " " + str(fields.get("data", ""))
    if Path(template).name.startswith("mnist"):
        data.license = MNIST_LICENSE
    if "bsds500" in sources.lower():
        data.license, data.license_name, data.license_link = (BSDS500_LICENSE[k] for k in
                                                              ("license", "license_name", "license_link"))
    data.datasets = training_datasets(template, args) or None
    base = base_model(fields.get("base_model") or args.get("init_from"))
    # a run continued from an earlier export of the same model is not a fine-tune of another model
    data.base_model = None if base is not None and base.split("/")[-1] == fields.get("model_name") else base
    papers = [f"arxiv:{paper}" for paper in cited_papers(text)]
    data.tags = sorted(set(data.tags or []) | set(papers))
    results = EVAL_RESULTS.get(Path(template).name, lambda _: [])(fields)
    if results:
        data.model_name = fields.get("model_name")
        data.eval_results = results
    return data


def training_datasets(template: str, args: dict[str, str]) -> list[str]:
    name = args.get("dataset_name", "")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return [name]
    return [HUB_DATASETS["mnist"]] if Path(template).name.startswith("mnist") else []


def base_model(init_from: str | None) -> str | None:
    """The Hub id of the bundled model a run started from (`.../srresnet-x4/final` -> ganzoo/srresnet-x4)."""
    if not init_from or init_from == "None":
        return None
    parts = Path(init_from).parts
    for part in reversed(parts):
        if part in MODELS:
            return MODELS[part].repo_id
    return None


def cited_papers(text: str) -> list[str]:
    return [paper for title, paper in PAPERS.items() if title in text]


def link_papers(text: str) -> str:
    """Cited titles (`*Title*`) become links to arXiv; already linked ones are left alone."""
    for title, paper in PAPERS.items():
        text = text.replace(f"*{title}*", f"*[{title}](https://arxiv.org/abs/{paper})*")
    return text


# -- model-index, from the same numbers (and the same rounding) as each family's table ------------


def _dataset_id(name: str) -> str:
    first = re.sub(r"[^a-z0-9-]", "", name.split()[0].lower())  # "moderate:" -> "moderate"
    return HUB_DATASETS.get(first, first)


def _config_id(name: str) -> str:
    """A row name as a dataset config: the Hub groups results by task, dataset and config."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def sr_results(fields: dict[str, Any]) -> list[EvalResult]:
    columns = (("psnr", "psnr_y", 2, "PSNR Y"), ("ssim", "ssim_y", 4, "SSIM Y"),
               ("psnr", "psnr_rgb", 2, "PSNR RGB"), ("ssim", "ssim_rgb", 4, "SSIM RGB"))
    return [EvalResult(task_type="image-to-image", task_name="Image super-resolution x4",
                       dataset_type=_dataset_id(name), dataset_name=name, metric_type=metric,
                       metric_name=label, metric_value=round(float(b[key]), digits),
                       metric_config="y" if label.endswith(" Y") else "rgb")
            for name, b in (fields.get("benchmarks") or {}).items() for metric, key, digits, label in columns]


def deblur_results(fields: dict[str, Any]) -> list[EvalResult]:
    model = fields.get("model_name", "model")
    columns = (("psnr", "psnr", 2, f"{model} PSNR"), ("ssim", "ssim", 4, "SSIM"))
    # the config tells rows of one dataset apart
    return [EvalResult(task_type="image-to-image", task_name="Motion deblurring",
                       dataset_type=_dataset_id(name), dataset_name=name, metric_type=metric,
                       dataset_config=_config_id(name), metric_name=label, metric_value=round(float(b[key]), digits))
            for name, b in (fields.get("benchmarks") or {}).items() for metric, key, digits, label in columns]


def digit_gan_results(fields: dict[str, Any]) -> list[EvalResult]:
    metrics = fields.get("metrics") or {}
    if "class_accuracy" not in metrics:
        return []
    common = dict(task_type="unconditional-image-generation", task_name="Class-conditional digit generation",
                  dataset_type=HUB_DATASETS["mnist"], dataset_name="MNIST", dataset_split="test")
    return [EvalResult(**common, metric_type="accuracy",
                       metric_name="generated digits classified as the requested class",
                       metric_value=round(100 * float(metrics["class_accuracy"]), 2)),
            EvalResult(**common, metric_type="fid", metric_name="digit FID (classifier features, vs MNIST test)",
                       metric_value=round(float(metrics["fid"]), 2))]


def digit_classifier_results(fields: dict[str, Any]) -> list[EvalResult]:
    metrics = fields.get("metrics") or {}
    if "test_accuracy" not in metrics:
        return []
    return [EvalResult(task_type="image-classification", dataset_type=HUB_DATASETS["mnist"], dataset_name="MNIST",
                       dataset_split="test", metric_type="accuracy", metric_name="MNIST test accuracy",
                       metric_value=round(100 * float(metrics["test_accuracy"]), 2))]


def style_results(fields: dict[str, Any], task_name: str) -> list[EvalResult]:
    """The grid score and structure SSIM of each photo set in the card's table (AdaIN: per style or reconstruction)."""
    columns = (("grid-artifact-score", "grid", 2, "grid (output)"),
               ("structure-ssim", "structure_ssim", 3, "structure SSIM"))
    # "reconstruction, Set14" and "mosaic.jpg, Set14" are results on the Set14 photos
    photos = lambda name: re.sub(r"^(reconstruction|\S+\.(jpe?g|png)), ", "", name)  # noqa: E731
    return [EvalResult(task_type="image-to-image", task_name=task_name, dataset_type=_dataset_id(photos(name)),
                       dataset_name=name, dataset_config=_config_id(name), metric_type=metric,
                       metric_name=label, metric_value=round(float(b[key]), digits))
            for name, b in (fields.get("benchmarks") or {}).items() for metric, key, digits, label in columns]


EVAL_RESULTS: dict[str, Callable[[dict[str, Any]], list[EvalResult]]] = {
    "super-resolution.md": sr_results,
    "deblurgan.md": deblur_results,
    "deblur-unet.md": deblur_results,
    "deblur-refiner.md": deblur_results,
    "mnist-dcgan.md": digit_gan_results,
    "mnist-classifier.md": digit_classifier_results,
    "style.md": lambda fields: style_results(fields, "Fast neural style transfer"),
    "adain.md": lambda fields: style_results(fields, "Arbitrary style transfer (AdaIN)"),
}


# -- re-deriving the fields of a rendered card (for cards whose run record is gone) ---------------


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every table in a markdown text as rows of {header: cell}, `**bold**` markers removed."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip().strip("*").strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(rows) > 2:
            header = rows[0]
            tables.append([{h: c for h, c in _first_wins(header, row)} for row in rows[2:]])
        rows = []
    return tables


def _first_wins(header: list[str], row: list[str]) -> Iterable[tuple[str, str]]:
    """(header, cell) pairs; a repeated header keeps its first column (e.g. the model's SSIM, not a baseline's)."""
    seen = set()
    for h, c in zip(header, row):
        if h not in seen:
            seen.add(h)
            yield h, c


def fields_from_card(text: str, template: str, model_name: str) -> dict[str, Any]:
    """The card fields that metadata needs (benchmarks or metrics, training arguments), read back from a card."""
    fields: dict[str, Any] = {"model_name": model_name, "args": dict(re.findall(r"^(\w+) = (.*)$", text, re.M))}
    template = Path(template).name
    number = lambda cell: float(cell.rstrip(" %"))  # noqa: E731
    row_name = lambda cell: re.sub(r" \(\d+ images\)$", "", cell)  # noqa: E731
    if template == "super-resolution.md":
        fields["benchmarks"] = {
            row_name(row["data"]): {
                "psnr_y": number(row["PSNR Y"]), "ssim_y": number(row["SSIM Y"]),
                "psnr_rgb": number(row["PSNR RGB"]), "ssim_rgb": number(row["SSIM RGB"])}
            for table in markdown_tables(text) for row in table if "PSNR Y" in row}
    elif template in ("deblurgan.md", "deblur-unet.md", "deblur-refiner.md"):
        fields["benchmarks"] = {row["data"]: {"psnr": number(row[f"{model_name} PSNR"]), "ssim": number(row["SSIM"])}
                                for table in markdown_tables(text) for row in table if f"{model_name} PSNR" in row}
    elif template in ("style.md", "adain.md"):
        fields["benchmarks"] = {row_name(row["photos"]): {"grid": number(row["grid (output)"]),
                                                          "grid_input": number(row["grid (photos)"]),
                                                          "structure_ssim": number(row["structure SSIM"])}
                                for table in markdown_tables(text) for row in table if "structure SSIM" in row}
    elif template == "mnist-dcgan.md":
        values = {row["metric"]: row["value"] for table in markdown_tables(text) for row in table if "metric" in row}
        if values:
            fields["metrics"] = {
                "class_accuracy": number(values["generated digits classified as the requested class"]) / 100,
                "fid": number(values["digit FID (classifier features, vs MNIST test)"])}
    elif template == "mnist-classifier.md":
        found = re.search(r"MNIST test accuracy: \*\*([\d.]+) %\*\*", text)
        if found:
            fields["metrics"] = {"test_accuracy": float(found.group(1)) / 100}
    return fields


def refresh_card(folder: str | Path, base: ModelCardData, class_name: str) -> ModelCard:
    """Rewrite a rendered card's metadata (and paper links) from its own body; its numbers stay as they are."""
    path = Path(folder) / "README.md"
    card = ModelCard.load(path)
    card.text = link_papers(card.text)
    template = TEMPLATE_FOR_CLASS[class_name]
    fields = fields_from_card(card.text, template, Path(folder).name)
    card.data = card_metadata(base, template, fields, card.text)
    card.save(path)
    return card
