"""`ganzoo stylize`: fast networks, AdaIN and user errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ganzoo.cli import main as cli_main


def test_cli_stylize_fast_and_adain(model_dirs, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, size in enumerate([(19, 23), (32, 17)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)).save(inputs / f"{i}.png")
    (inputs / "bad.png").write_text("not an image")
    code = cli_main(["stylize", str(inputs), "-o", str(tmp_path / "fast"), "--style", str(model_dirs["fast"]),
                     "--alpha", "0.8", "--device", "cpu"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "bad.png" in errors[0]
    assert sorted(p.name for p in (tmp_path / "fast").iterdir()) == ["0.png", "1.png"]
    assert Image.open(tmp_path / "fast" / "1.png").size == (17, 32)
    style = tmp_path / "painting.jpg"
    Image.fromarray(data.coffee()).save(style)
    code = cli_main(["stylize", str(inputs / "0.png"), "-o", str(tmp_path / "adain"), "--style", str(style),
                     "--adain-model", str(model_dirs["adain"]), "--preserve-color", "--tile", "64", "--device", "cpu"])
    assert code == 0 and Image.open(tmp_path / "adain" / "0.png").size == (23, 19)


def test_cli_stylize_user_errors(model_dirs, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(image)
    assert cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", "no-such-style", "--device",
                     "cpu"]) == 2
    assert "no-such-style" in capsys.readouterr().err
    # a style image with a fast-style model as the AdaIN model: the wrong kind of model
    assert cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", str(image),
                     "--adain-model", str(model_dirs["fast"]), "--device", "cpu"]) == 2
    assert "not a AdaINStyleTransfer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", "mosaic", "--alpha", "1.5"])
