import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import pipelines
from ganzoo.inference import fold_batch_norms, for_inference, output_conv, subpixel_conv, to_bf16
from ganzoo.models import DeblurGANGenerator, TransformerNet
from ganzoo.models.srgan import SRResNet


def randomise_norms(model: nn.Module) -> nn.Module:
    """Give every batch norm statistics and an affine part that are not the identity, so folding them shows."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
        if isinstance(module, nn.PReLU):
            nn.init.uniform_(module.weight, 0.05, 0.4)
    return model


@pytest.mark.parametrize("kernel,factor,bias", [(9, 2, True), (3, 2, False), (5, 3, True), (1, 2, True)])
def test_subpixel_conv_equals_the_conv_after_pixel_shuffle(kernel, factor, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 3, kernel, padding=kernel // 2, bias=bias)
    x = torch.randn(2, 6 * factor * factor, 7, 5)
    moved = subpixel_conv(conv, factor)
    with torch.no_grad():
        expected = conv(F.pixel_shuffle(x, factor))
        got = F.pixel_shuffle(moved(x), factor)
    assert moved.out_channels == 3 * factor * factor and moved.in_channels == 6 * factor * factor
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-5


@pytest.mark.parametrize("conv", [nn.Conv2d(4, 3, 3, stride=2, padding=1), nn.Conv2d(4, 3, 4, padding=2),
                                  nn.Conv2d(4, 3, 3), nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect")],
                         ids=["strided", "even", "valid", "reflect"])
def test_subpixel_conv_refuses_what_it_cannot_rewrite(conv):
    with pytest.raises(ValueError, match="stride-1, zero-padded, odd square"):
        subpixel_conv(conv, 2)


@pytest.mark.parametrize("upsample", ["pixelshuffle", "bilinear"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srresnet_for_inference_matches_and_leaves_the_original_alone(scale, upsample):
    torch.manual_seed(0)
    model = randomise_norms(SRResNet(scale=scale, num_blocks=2, channels=8, upsample=upsample)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr = torch.rand(1, 3, 11, 9)
    fast = for_inference(model)
    with torch.no_grad():
        expected, got = model(lr), fast(lr)
    assert (got - expected).abs().max() < 1e-5
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    if upsample == "pixelshuffle":  # the tail moves before the last shuffle
        assert isinstance(fast.tail[-1], nn.PixelShuffle) and fast.tail[0].out_channels == 12
    else:  # resize-convolution has no shuffle to move it before: only the batch norms fold
        assert isinstance(fast.tail, nn.Conv2d)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) and isinstance(model.tail, nn.Conv2d)


def test_per_channel_prelu_moves_before_the_shuffle():
    torch.manual_seed(0)
    model = randomise_norms(SRResNet(scale=2, num_blocks=1, channels=4)).eval()
    model.upsample[-1] = nn.PReLU(4)
    nn.init.uniform_(model.upsample[-1].weight, -0.5, 0.5)
    lr = torch.randn(1, 3, 6, 7)
    with torch.no_grad():
        assert (for_inference(model)(lr) - model(lr)).abs().max() < 1e-5


def test_batch_norms_in_training_mode_are_not_folded():
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    fold_batch_norms(block)
    assert isinstance(block[1], nn.BatchNorm2d)
    fold_batch_norms(block.eval())
    assert isinstance(block[1], nn.Identity)


@pytest.mark.parametrize("model", [DeblurGANGenerator(channels=8, num_blocks=1), TransformerNet(channels=8)],
                         ids=["deblurgan", "fast-style"])
def test_models_without_batch_norms_are_unchanged(model):
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(for_inference(model.eval())(x), model(x))


def test_the_cpu_pipeline_runs_the_rewritten_model(monkeypatch):
    rewritten = []
    monkeypatch.setattr(pipelines, "for_inference", lambda m: rewritten.append(for_inference(m)) or rewritten[-1])
    torch.manual_seed(0)
    model = randomise_norms(SRResNet(scale=4, num_blocks=2, channels=8)).train()
    lr = torch.rand(1, 3, 12, 10)
    got = pipelines.sr_upscaler(model, device=torch.device("cpu"), precision="fp32")(lr)  # the rewrites alone
    assert model.training  # the pipeline ran an eval-mode copy
    with torch.no_grad():
        expected = model.eval()(lr).clamp(0, 1)
    assert got.is_contiguous() and (got - expected).abs().max() < 1e-5
    assert len(rewritten) == 1


def test_the_rewritten_copy_is_reused_until_the_weights_change():
    torch.manual_seed(0)
    model = randomise_norms(SRResNet(scale=2, num_blocks=1, channels=4)).eval()
    lr, cpu = torch.rand(1, 3, 8, 8), torch.device("cpu")
    first = pipelines._rewritten(model, cpu, torch.channels_last)
    assert pipelines._rewritten(model, cpu, torch.channels_last) is first
    with torch.no_grad():
        model.tail.bias.add_(0.25)  # an in-place update, as an optimiser step makes
    again = pipelines._rewritten(model, cpu, torch.channels_last)
    assert again is not first
    with torch.no_grad():
        assert (pipelines.model_function(model, cpu, "fp32")(lr) - model(lr).clamp(0, 1)).abs().max() < 1e-5


@pytest.mark.parametrize("model", [SRResNet(scale=4, num_blocks=1, channels=8), DeblurGANGenerator(8, 1),
                                   TransformerNet(channels=4, num_blocks=1)], ids=lambda m: type(m).__name__)
def test_to_bf16_keeps_only_the_output_conv_in_fp32(model):
    torch.manual_seed(0)
    for parameter in model.parameters():  # DeblurGAN's tail starts at zero: give every layer some weight
        torch.nn.init.normal_(parameter, std=0.1)
    model.eval()
    assert output_conv(model).out_channels == 3  # the last conv registered is the one that makes the image
    fast = to_bf16(for_inference(model))
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.weight.dtype for c in convs] == [torch.bfloat16] * (len(convs) - 1) + [torch.float32]
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        reference, out = model(x), fast(x)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    diff = (out - reference).abs()
    assert diff.max() > 0 and diff.mean() < 0.01  # bf16 did run (not fp32), and stayed near fp32
    assert next(model.parameters()).dtype == torch.float32  # the original is untouched
