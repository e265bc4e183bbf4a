from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torch import nn

import ganzoo
from ganzoo import pipelines
from ganzoo.imaging import image_to_tensor, imresize
from ganzoo.models.digits import DigitGenerator
from ganzoo.models.style import rgb_to_ycbcr

from conftest import needs_bundled, tiny_net, tiny_srresnet


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    torch.manual_seed(0)
    return DigitGenerator(channels=4).eval()


class TinySR(nn.Module):
    """A conv + pixel-shuffle x2 upscaler: receptive field of one pixel, well inside the tile overlap."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _rgb(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


# -- digits -------------------------------------------------------------------------------------------

def test_digit_labels_repeat_a_digit_or_cycle_through_the_classes():
    assert pipelines.digit_labels(7, 5, seed=0).tolist() == [7] * 5
    assert pipelines.digit_labels(None, 12, seed=3).tolist() == [*range(10), 0, 1]


@pytest.mark.parametrize(("digit", "n"), [(10, 4), (-1, 4), (3, 0), (3, 1025), (None, 0)])
def test_digit_labels_reject_bad_values(digit, n):
    with pytest.raises(ValueError):
        pipelines.digit_labels(digit, n, seed=0)


def test_sample_digits_is_deterministic_per_seed(generator):
    first = pipelines.sample_digits(generator, n=6, seed=5, digit=3)
    assert first.shape == (6, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, pipelines.sample_digits(generator, n=6, seed=5, digit=3))
    assert not torch.equal(first, pipelines.sample_digits(generator, n=6, seed=6, digit=3))
    assert not torch.equal(first, pipelines.sample_digits(generator, n=6, seed=5, digit=4))


def test_sample_digits_grid_size(generator):
    grid = pipelines.sample_digits_grid(generator, n=10, seed=0, nrow=5)
    assert grid.size == (5 * 30 + 2, 2 * 30 + 2)  # make_grid pads 2 pixels around each digit


def test_interpolation_strip_runs_from_seed_a_to_seed_b(generator):
    strip = np.asarray(pipelines.interpolate_digits(generator, seed_a=1, seed_b=2, digit=8, steps=5), dtype=int)
    assert strip.shape[:2] == (32, 5 * 30 + 2)
    for seed, left in ((1, 2), (2, 4 * 30 + 2)):
        end = np.asarray(pipelines.sample_digits_grid(generator, n=1, seed=seed, digit=8, nrow=1), dtype=int)
        assert end.shape[:2] == (28, 28)  # make_grid leaves a single image unpadded
        assert np.abs(strip[2:30, left:left + 28] - end).max() <= 1


def test_slerp_keeps_the_norm_between_orthogonal_vectors():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    path = pipelines.slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a[0]) and torch.allclose(path[-1], b[0], atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0))


# -- image to image -----------------------------------------------------------------------------------

def test_alpha_is_kept_and_upscaled():
    rgba = _rgb(6, 8, channels=4)
    out = pipelines.run_image_to_image(Image.fromarray(rgba, "RGBA"), lambda x: imresize(x, scale=2), scale=2,
                                       device=torch.device("cpu"))
    assert out.mode == "RGBA" and out.size == (16, 12)
    alpha = torch.from_numpy(rgba[..., 3]).float()[None, None] / 255
    expected = (imresize(alpha, scale=2).clamp(0, 1) * 255).round()[0, 0].numpy()
    assert np.array_equal(np.asarray(out)[..., 3], expected.astype(np.uint8))


def test_sixteen_bit_grey_stays_sixteen_bit():
    grey = np.random.default_rng(0).integers(0, 65536, (9, 7), dtype=np.uint16)
    out = pipelines.run_image_to_image(grey, lambda x: x, device=torch.device("cpu"))
    assert out.mode == "I;16" and np.array_equal(np.asarray(out), grey)
    assert pipelines.upscale(grey, scale=2, device=torch.device("cpu")).mode == "I;16"


class _TintBlue(nn.Module):
    """A stand-in deblurring/SR model that paints blue into grey, as a GAN can."""

    scale = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=self.scale) if self.scale > 1 else x
        return (x + torch.tensor([0.0, 0.0, 0.2]).view(1, 3, 1, 1)).clamp(0, 1)


@pytest.mark.parametrize("mode", ["L", "LA", "I;16"])
def test_restoration_keeps_grey_input_grey(mode):
    grey = data.camera()[:24, :20]
    image = {"L": Image.fromarray(grey), "LA": Image.fromarray(np.dstack([grey, grey[::-1]]), "LA"),
             "I;16": Image.fromarray(grey.astype(np.uint16) * 257)}[mode]
    cpu = torch.device("cpu")
    tint = _TintBlue()
    upscaled = pipelines.upscale(image, tint, device=cpu, precision="fp32")
    tint_1x = _TintBlue()
    tint_1x.scale = 1
    deblurred = pipelines.deblur(image, tint_1x, device=cpu, precision="fp32")
    for out, scale in [(upscaled, 2), (deblurred, 1)]:
        assert out.mode == mode and out.size == (20 * scale, 24 * scale)
    # the channel mean: grey + 0.2/3 where the blue channel did not clip
    expected = np.clip(grey.astype(np.float32) / 255 + np.where(grey < 204, 0.2, (255 - grey) / 255.0) / 3, 0, 1)
    got = np.asarray(deblurred)[..., 0] if mode == "LA" else np.asarray(deblurred)
    scale = 65535 if mode == "I;16" else 255
    assert np.abs(got / scale - expected).max() <= 1 / 255
    stylized = pipelines.run_image_to_image(image, tint_1x, device=cpu)  # style transfer may add colour
    assert stylized.mode in ("RGB", "RGBA")


def test_tiled_equals_untiled():
    model, image = TinySR(), Image.fromarray(_rgb(70, 100))
    whole = pipelines.upscale(image, model, device=torch.device("cpu"))
    tiled = pipelines.upscale(image, model, tile=40, device=torch.device("cpu"))
    assert whole.size == (200, 140)
    assert np.abs(np.asarray(whole, dtype=int) - np.asarray(tiled, dtype=int)).max() <= 1


def test_sr_upscaler_tiled_equals_untiled_on_tensors():
    model, lr = TinySR(), torch.rand(1, 3, 50, 45, generator=torch.Generator().manual_seed(0))
    whole = pipelines.sr_upscaler(model, device=torch.device("cpu"))(lr)
    tiled = pipelines.sr_upscaler(model, tile=36, device=torch.device("cpu"))(lr)
    assert whole.shape == (1, 3, 100, 90) and torch.allclose(whole, tiled, atol=1e-6)


def test_upscale_bicubic_is_matlab_imresize():
    image = _rgb(7, 10)
    out = pipelines.upscale(image, scale=4, device=torch.device("cpu"))
    assert out.mode == "RGB" and out.size == (40, 28)
    rgb, _, _ = image_to_tensor(Image.fromarray(image))
    expected = (imresize(rgb, scale=4).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(np.asarray(out), expected)


def test_upscale_uses_the_models_own_scale_and_refuses_other_models():
    assert pipelines.upscale(_rgb(5, 6), TinySR(), scale=4, device=torch.device("cpu")).size == (12, 10)
    with pytest.raises(ValueError, match="not a super-resolution model"):
        pipelines.upscale(_rgb(5, 6), nn.Identity(), device=torch.device("cpu"))


def test_a_model_that_returns_the_wrong_size_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 1 images of 10x12"):
        pipelines.run_image_to_image(_rgb(5, 6), lambda x: x, scale=2, device=torch.device("cpu"))


def test_pick_device():
    assert pipelines.pick_device("cpu") == torch.device("cpu")
    assert pipelines.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        pipelines.pick_device("nonsense")


def test_expand_inputs_lists_folder_images_sorted_and_keeps_missing_files(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    missing = tmp_path / "missing.png"
    assert pipelines.expand_inputs([str(tmp_path), str(missing)]) == [tmp_path / "a.JPG", tmp_path / "b.png",
                                                                      missing]


def test_tiled_upscale_equals_untiled_for_a_tiny_model():
    """Tiny SRResNet (1 block): receptive-field radius in LR pixels = 4 (9x9 head) + 2 (block)
    + 1 (body tail) + 1 + 0.5 (the two x2 upsampling convs) + 1 (9x9 tail at x4) = 9.5, under
    the 16-pixel overlap of `pipelines.upscale`, so tiles of 48 give the untiled result exactly
    (up to float summation order)."""
    torch.manual_seed(0)
    model = tiny_srresnet(4)
    lr = torch.rand(1, 3, 90, 100)  # 100 wide, 90 high: 3 x 3 tiles of 48 with 16 overlap
    whole = pipelines.sr_upscaler(model, device="cpu")(lr)
    tiled = pipelines.sr_upscaler(model, tile=48, device="cpu")(lr)
    assert tiled.shape == whole.shape == (1, 3, 360, 400)
    assert (tiled - whole).abs().max().item() < 1e-4
    # the PIL path (pipelines.upscale) as the CLI and the app use it
    image = Image.fromarray((lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    a = np.asarray(pipelines.upscale(image, model, tile=None, device="cpu"), dtype=np.int16)
    b = np.asarray(pipelines.upscale(image, model, tile=48, device="cpu"), dtype=np.int16)
    assert a.shape == (360, 400, 3)
    assert np.abs(a - b).max() <= 1  # float noise can flip a rounding at most by one level


def test_tiling_differs_when_the_receptive_field_exceeds_the_overlap():
    """Control for the test above: with overlap 2 (< 9.5) the tile seams show."""
    from ganzoo.imaging import tiled_apply

    model = tiny_srresnet(4)
    lr = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        diff = (tiled_apply(model, lr, tile=24, overlap=2, scale=4) - model(lr)).abs().max().item()
    assert diff > 1e-3


@needs_bundled
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # each number format by name, not by what the host picks
def test_tiled_upscale_with_bundled_srresnet(precision):
    """The bundled SRResNet x4 (16 blocks) reaches about 4 + 16*2 + 1 + 1 + 0.5 + 1 = 39.5 LR pixels,
    more than the 16-pixel overlap, so tiling is not exact. Measured on a 100x90 astronaut crop
    with tile=48: at most 1/255 after 8-bit quantisation (mean 4e-5 levels); on the 64x60 crop used
    here (2 x 2 tiles, a few seconds on a CPU) one value of 184,320 differs, by 1/255. We allow 2/255."""
    model = ganzoo.load("srresnet-x4")
    image = Image.fromarray(data.astronaut()[100:160, 150:214])  # 60 high, 64 wide
    a = np.asarray(pipelines.upscale(image, model, device="cpu", precision=precision), dtype=np.int16)
    b = np.asarray(pipelines.upscale(image, model, tile=48, device="cpu", precision=precision), dtype=np.int16)
    assert a.shape == (240, 256, 3)
    assert np.abs(a - b).max() <= 2


def test_stylize_fast_net_alpha_blends_in_image_space():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (21, 17, 4), dtype=np.uint8), "RGBA")
    net = tiny_net()
    full = pipelines.stylize(image, net, device="cpu")
    assert full.size == image.size and full.mode == "RGBA"
    assert np.array_equal(np.asarray(full)[..., 3], np.asarray(image)[..., 3])  # alpha kept
    assert np.array_equal(np.asarray(pipelines.stylize(image, net, alpha=0.0)), np.asarray(image))
    half = np.asarray(pipelines.stylize(image, net, alpha=0.5), dtype=float)[..., :3]
    expected = (np.asarray(full, dtype=float)[..., :3] + np.asarray(image, dtype=float)[..., :3]) / 2
    assert np.abs(half - expected).max() <= 1.01


def test_stylize_adain_with_a_style_file_tiles_and_preserves_colour(adain_model, tmp_path):
    style_path = tmp_path / "style.png"
    Image.fromarray(data.coffee()).save(style_path)
    content = Image.fromarray(data.chelsea()[:45, :70])
    out = pipelines.stylize(content, adain_model, style=style_path, alpha=0.8)
    assert out.size == content.size and out.mode == "RGB"
    assert pipelines.stylize(content, adain_model, style=style_path, tile=40).size == content.size
    kept = pipelines.stylize(content, adain_model, style=style_path, preserve_color=True)
    def chroma(image: Image.Image) -> torch.Tensor:
        return rgb_to_ycbcr(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None])[:, 1:]

    assert (chroma(kept) - chroma(content)).abs().mean() < (chroma(out) - chroma(content)).abs().mean()
    mixed = pipelines.stylize(content, adain_model, style=[style_path, Image.fromarray(data.astronaut())],
                              style_weights=[0.5, 0.5])
    assert mixed.size == content.size


def test_stylize_wrong_arguments(adain_model):
    content = Image.new("RGB", (20, 20))
    with pytest.raises(ValueError, match="has its style built in"):
        pipelines.stylize(content, tiny_net(), style=content)
    with pytest.raises(ValueError, match="AdaIN needs a style image"):
        pipelines.stylize(content, adain_model)
    with pytest.raises(ValueError, match="alpha must be a number from 0 to 1"):
        pipelines.stylize(content, tiny_net(), alpha=2)


def test_deblur_pipeline_keeps_size_alpha_and_tiles_match(tiny_deblur_dir):
    model = ganzoo.load(tiny_deblur_dir)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (45, 71, 4), dtype=np.uint8), "RGBA")
    out = pipelines.deblur(image, model)
    assert out.size == image.size and out.mode == "RGBA"
    big = Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8))
    whole, tiled = pipelines.deblur(big, model), pipelines.deblur(big, model, tile=64)
    # instance norm sees each tile's statistics: close but not bit-equal to the whole image
    diff = np.abs(np.asarray(whole, np.int16) - np.asarray(tiled, np.int16))
    assert whole.size == tiled.size and diff.mean() < 8


def test_pipeline_bf16_upscale_is_close_to_fp32(tiny_sr):
    photo = Image.fromarray(data.astronaut()[:40, :48])
    fp32, bf16 = (np.asarray(pipelines.upscale(photo, tiny_sr, precision=p), dtype=float) for p in ("fp32", "bf16"))
    assert fp32.shape == bf16.shape == (160, 192, 3)
    assert 0 < np.abs(fp32 - bf16).mean() < 1.0  # grey levels


def test_adain_refuses_bf16():
    from ganzoo.models.style import AdaINStyleTransfer

    with pytest.raises(ValueError, match="AdaIN runs in fp32"):
        pipelines.stylizer(AdaINStyleTransfer.__new__(AdaINStyleTransfer), style=torch.rand(1, 3, 8, 8),
                           precision="bf16")


# -- the default path's form per device ---------------------------------------------------------------

def test_cuda_runs_channels_last_with_graphs_unless_turned_off(monkeypatch):
    cuda = torch.device("cuda")  # only its type is read
    assert pipelines.memory_format_for(cuda) == torch.channels_last
    assert pipelines.memory_format_for(torch.device("cpu")) == torch.channels_last
    assert pipelines.memory_format_for(torch.device("meta")) == torch.contiguous_format
    monkeypatch.delenv("GANZOO_CUDA_GRAPHS", raising=False)
    assert pipelines.uses_cuda_graphs(cuda) and not pipelines.uses_cuda_graphs(torch.device("cpu"))
    monkeypatch.setenv("GANZOO_CUDA_GRAPHS", "0")
    assert not pipelines.uses_cuda_graphs(cuda)


def test_graphs_live_with_the_rewritten_copy_across_requests(monkeypatch):
    """The app builds the model function on every request: its CUDA graphs must be the same object each time,
    or every request would capture again. (Graphs faked on the CPU: `uses_cuda_graphs` says yes.)"""
    from ganzoo.graphs import ShapeGraphs

    monkeypatch.setattr(pipelines, "uses_cuda_graphs", lambda device: True)
    model, cpu = tiny_srresnet(2), torch.device("cpu")
    first, second = (pipelines.model_function(model, cpu, "fp32") for _ in range(2))
    assert isinstance(first, ShapeGraphs) and first is second
    assert pipelines.model_function(model, cpu, "bf16") is not first  # another form, other graphs
    lr = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        expected = model(lr).clamp(0, 1)
    assert (first(lr) - expected).abs().max() < 1e-5  # on the CPU a ShapeGraphs runs eagerly


def test_on_a_bf16_cpu_auto_runs_the_very_function_precision_bf16_runs(monkeypatch, cpu_bf16):
    """Issue 28 timed `--precision auto` at 1.1x-2.1x and `--precision bf16` at 2.82x on a native-bf16 CPU:
    for gated weights both build one and the same rewritten bf16 copy, so a gap between the two rows is the
    machine's noise, not the code. On a CPU without native bf16, auto stays fp32 (another copy)."""
    from ganzoo import gate_records

    monkeypatch.setattr(gate_records, "bf16_passed", lambda model, path=None, device_type="cpu": True)
    model, cpu = tiny_srresnet(2), torch.device("cpu")
    pipelines.model_function(model, cpu, "auto")
    auto = pipelines._REWRITTEN[model][1]
    pipelines.model_function(model, cpu, "bf16")
    bf16 = pipelines._REWRITTEN[model][1]
    assert (auto is bf16) is cpu_bf16
    assert next(auto.parameters()).dtype == (torch.bfloat16 if cpu_bf16 else torch.float32)


def test_warm_up_captures_the_shapes_known_at_load(monkeypatch):
    """What `warm_up` leaves behind: a graph per given shape, so a user's first call of that shape replays.
    (CUDA faked on the CPU: tensors count as graphable, a 'capture' runs the function.)"""
    from ganzoo import graphs

    monkeypatch.setattr(pipelines, "uses_cuda_graphs", lambda device: True)
    monkeypatch.setattr(graphs, "graphable", lambda x: True)
    monkeypatch.setattr(graphs, "cuda_graph", lambda fn, x: ((lambda: None), fn(x)))
    model, cpu = tiny_srresnet(2), torch.device("cpu")
    pipelines.warm_up(model, cpu, [(1, 3, 8, 8), (1, 3, 16, 12)], "fp32")
    runner = pipelines.model_function(model, cpu, "fp32")
    assert [key[0] for key in runner.graphs] == [(1, 3, 8, 8), (1, 3, 16, 12)]
    monkeypatch.setattr(pipelines, "uses_cuda_graphs", lambda device: False)
    pipelines.warm_up(model, cpu, [(1, 3, 8, 8)], "fp32")  # no graphs, nothing to do


def test_graphs_are_dropped_with_their_model(monkeypatch):
    """A model's CUDA graphs (and their memory pools) must not outlive it: the app and the benchmark make many."""
    import gc
    import weakref

    monkeypatch.setattr(pipelines, "uses_cuda_graphs", lambda device: True)
    model = tiny_srresnet(2)
    runner = weakref.ref(pipelines.model_function(model, torch.device("cpu"), "fp32"))
    assert runner() is not None
    del model
    gc.collect()
    assert runner() is None
