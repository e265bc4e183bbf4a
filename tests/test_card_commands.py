"""Every evaluation command in a bundled card pins the device and precision its number was measured at, so that
it reproduces on any host: under `--precision auto` a CPU with native bf16 (or a GPU) would run gated weights in
bf16 and print slightly different numbers."""

import re

import pytest

from ganzoo.catalog import MODELS

from conftest import REPO_ROOT


@pytest.mark.parametrize("name", [name for name, entry in MODELS.items() if entry.is_bundled])
def test_card_commands_pin_the_device_and_precision_they_were_measured_at(name):
    card = (REPO_ROOT / "ganzoo" / "pretrained" / name / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(ganzoo evaluate (\w+) --model [^`]*)`", card)
    unpinned = []
    for line, task in commands:
        needed = ["--device cpu"] + (["--precision"] if task in ("sr", "deblur", "style") else [])
        if "..." not in line and not all(option in line for option in needed):
            unpinned.append(line)
    assert not unpinned, f"{name}: add --device cpu --precision fp32 (as measured) to: {unpinned}"
