"""The plug-and-play prior `Denoiser`: shapes, the noise-level input, config checks, save and load."""

from __future__ import annotations

import pytest
import torch

from ganzoo.hub import ModelLoadError
from ganzoo.models import Denoiser
from ganzoo.models.denoiser import SIGMA_MAX


@pytest.fixture
def tiny() -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(channels=8, layers=3).eval()


@pytest.mark.parametrize("size", [(16, 16), (15, 21), (1, 1)])
def test_any_size_in_same_size_out(tiny, size):
    x = torch.rand(2, 3, *size)
    assert tiny(x, 0.1).shape == x.shape
    assert tiny(x, torch.tensor([0.0, SIGMA_MAX])).shape == x.shape


def test_the_noise_level_is_an_input(tiny):
    x = torch.rand(1, 3, 12, 12)
    assert not torch.allclose(tiny(x, 0.0), tiny(x, SIGMA_MAX))
    # one level per image: the same as denoising each image alone
    batch = torch.rand(2, 3, 12, 12)
    levels = torch.tensor([0.02, 0.15])
    torch.testing.assert_close(tiny(batch, levels)[1:], tiny(batch[1:], 0.15))


def test_bad_inputs_are_clear_errors(tiny):
    with pytest.raises(ValueError, match=r"RGB batch \[N,3,H,W\]"):
        tiny(torch.rand(3, 8, 8), 0.1)
    with pytest.raises(ValueError, match="sigma must be"):
        tiny(torch.rand(2, 3, 8, 8), torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="sigma must be"):
        tiny(torch.rand(1, 3, 8, 8), -0.1)
    with pytest.raises(ValueError, match="sigma must be"):
        tiny(torch.rand(1, 3, 8, 8), float("nan"))


@pytest.mark.parametrize("config", [{"channels": 0}, {"layers": 1}, {"layers": 100}, {"channels": 2.5}])
def test_config_out_of_range_fails_before_allocating(config):
    with pytest.raises(ModelLoadError, match="config value"):
        Denoiser(**config)


def test_save_and_load_round_trip(tiny, tmp_path):
    import ganzoo

    tiny.save_pretrained(tmp_path / "den")
    assert (tmp_path / "den" / "model.safetensors").is_file()
    loaded = ganzoo.load(tmp_path / "den", expected=(Denoiser,))
    x = torch.rand(1, 3, 10, 10)
    torch.testing.assert_close(loaded(x, 0.05), tiny(x, 0.05))


def test_the_bundled_denoiser_removes_noise_at_every_level():
    """The bundled weights are trained: on a photo it never saw (skimage's astronaut), noise of 5-50/255 drops
    by several dB, and telling it the true level beats telling it a wrong one."""
    import ganzoo
    from PIL import Image
    from skimage import data as skdata

    from ganzoo import imaging
    from ganzoo.metrics import psnr

    model = ganzoo.load("denoiser", expected=(Denoiser,)).eval()
    clean = imaging.image_to_tensor(Image.fromarray(skdata.astronaut()[100:228, 150:278]))[0]
    generator = torch.Generator().manual_seed(0)
    for level in (5, 15, 30, 50):
        sigma = level / 255
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
        with torch.inference_mode():
            told = model(noisy, sigma).clamp(0, 1)
            wrong = model(noisy, sigma / 4).clamp(0, 1)
        gain = psnr(told, clean).item() - psnr(noisy.clamp(0, 1), clean).item()
        assert gain > (2 if level == 5 else 5), (level, gain)
        assert psnr(told, clean).item() > psnr(wrong, clean).item(), level
