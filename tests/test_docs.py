"""README.md and docs/: every relative link and image resolves, and the README's first sections run as written."""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
from PIL import Image
from huggingface_hub import constants

from ganzoo.cli import main as cli_main
from ganzoo.registry import MODELS

from conftest import REPO_ROOT, write_png

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "model_cards" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code (where a bracket is code, not a link)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "code", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation and emoji dropped, spaces as hyphens."""
    heading = re.sub(r"[`*]", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    found, counts = set(), {}
    for line in re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            found.add(f"{base}-{counts[base]}" if base in counts else base)
            counts[base] = counts.get(base, 0) + 1
    return found


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section of a markdown text."""
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert found, f"README has no '## {heading}' section"
    return found.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def commands(block: str) -> list[str]:
    """The command lines of a bash block, comments dropped and `\\` continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


# -- links ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][\w+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{page.relative_to(REPO_ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Training from 🤗 datasets\n## `ganzoo` Robustness\n## Robustness\n"
                    "[a](other.md#x) ![b](fig.png) `[c](code.md)` [d](https://example.com)\n")
    assert LINK.findall(prose(page.read_text())) == ["other.md#x", "fig.png", "https://example.com"]
    assert anchors(page) == {"training-from--datasets", "ganzoo-robustness", "robustness"}
    page.write_text("## Robustness\n## Robustness\n")
    assert anchors(page) == {"robustness", "robustness-1"}


def test_readme_is_short_and_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "README.md is for a five-minute read: the rest belongs in docs/"
    for page in (REPO_ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in text, f"README does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_headings_carry_no_issue_numbers(page):
    headings = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert not [h for h in headings if re.search(r"\bissue\b|#\d", h, re.I)]


def test_models_table_links_each_bundled_model_to_its_card_and_quotes_it():
    """One headline number per model, each a number its card shows."""
    table = section(README.read_text(encoding="utf-8"), "Models")
    for name, entry in MODELS.items():
        if entry.is_bundled:
            assert f"](ganzoo/pretrained/{name}/README.md)" in table, f"{name} has no row linking its card"
    for row in (line for line in table.splitlines() if "ganzoo/pretrained/" in line):
        cards = "".join((REPO_ROOT / link).read_text(encoding="utf-8")
                        for link in re.findall(r"\((ganzoo/pretrained/[^)]+)\)", row))
        headline = row.strip("|").split("|")[-1]
        for number in re.findall(r"[+-]?\d+\.\d+", re.sub(r"\([^)]*\)", "", headline)):
            assert number in cards, f"{number} in the README's row is not in its card: {row[:60]}"



def test_models_table_gives_each_bundled_model_its_parameter_count():
    """The params column is what the weights hold (parameters, not buffers), in millions as the table rounds them."""
    from ganzoo import load
    from ganzoo.hub import count_parameters

    table = section(README.read_text(encoding="utf-8"), "Models")
    rows = [line for line in table.splitlines() if "ganzoo/pretrained/" in line]
    checked = 0
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        shown = re.match(r"([\d.]+) M", cells[2])
        if shown is None:
            continue
        for name in re.findall(r"\(ganzoo/pretrained/([^/)]+)/README.md\)", cells[0]):
            count = count_parameters(load(name))
            assert f"{count / 1e6:.2f}" == shown.group(1), f"{name}: {count:,} parameters, the README says {cells[2]}"
            checked += 1
    assert checked >= 5


# -- the commands of the README's first sections -----------------------------------------------------------

def test_the_two_commands_are_make_targets_with_the_pins_the_readme_names():
    text = README.read_text(encoding="utf-8")
    makefile = (REPO_ROOT / "Makefile").read_text()
    first = commands(blocks(text, "bash")[0])
    assert first == ["make demo", "make test"]
    for command in first:
        assert re.search(rf"^{command.split()[1]}:", makefile, re.M)
    pins = re.search(r"`(torch==\S+ torchvision==\S+)`", text).group(1)
    assert f"TORCH := {pins}" in makefile


def test_the_pip_extras_exist():
    install = section(README.read_text(encoding="utf-8"), "Install and use from Python")
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    listed = re.sub(r" \([^)]*\)", "", re.search(r"extras: (.*)$", install, re.M).group(1)).split(", ")
    named = set(re.findall(r"\.\[(\w+)\]", install)) | set(listed)
    assert "all" in named and named <= set(extras), named - set(extras)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working folder with the inputs the README's examples name, `../shared/data` stand-ins beside it,
    and a Hugging Face cache holding the bundled srresnet-x4 as the Hub repo `ganzoo/srresnet-x4`."""
    work = tmp_path / "work"
    for folder in ("photos", "shaky", "../shared/data/sr/bench/Set5"):
        (work / folder).mkdir(parents=True)
    for i, path in enumerate(["photo.png", "photo.jpg", "shaky.jpg", "painting.jpg", "photos/a.png", "photos/b.jpg",
                              "shaky/c.png", "../shared/data/sr/bench/Set5/baby.png",
                              "../shared/data/sr/bench/Set5/bird.png"]):
        write_png(work / path, 48, 40, seed=i)
    line = Image.new("L", (7, 7))
    line.paste(255, (1, 3, 6, 4))  # a 5 px horizontal shake
    line.save(work / "kernel.png")
    repo = tmp_path / "hf-cache" / "models--ganzoo--srresnet-x4"
    shutil.copytree(MODELS["srresnet-x4"].bundled_path, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(work)
    return work


@pytest.mark.slow
def test_the_python_example_runs_as_written(workdir):
    code = blocks(section(README.read_text(encoding="utf-8"), "Install and use from Python"), "python")
    assert len(code) == 1
    exec(compile(code[0], "README.md", "exec"), {})
    for output in ("photo_x4.png", "sharp.png", "mosaic.png", "adain.png", "sevens.png",
                   "my-srresnet/config.json", "my-srresnet/model.safetensors"):
        assert (workdir / output).is_file(), output


@pytest.mark.slow
def test_the_command_line_examples_run_as_written(workdir, capsys):
    lines = commands(blocks(section(README.read_text(encoding="utf-8"), "Command line"), "bash")[0])
    assert lines and all(line.startswith("ganzoo ") for line in lines)
    for line in lines:
        assert cli_main(shlex.split(line)[1:]) == 0, line
    out = capsys.readouterr().out
    assert '"psnr_y"' in out and "srgan-x4" in out
    for output in ("grid.png", "out/a.png", "out/b.png", "sharp/c.png"):
        assert (workdir / output).is_file(), output
