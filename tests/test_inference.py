import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import pipelines
from ganzoo.inference import PixelLayerNorm, ResizeConvTail, fold_batch_norms, for_inference, subpixel_conv, to_bf16
from ganzoo.models import DeblurGANGenerator, DeblurUNet, TransformerNet
from ganzoo.models.deblur_unet import LayerNorm2d
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
    else:  # the last upsampling step and the tail run on the half-size grid
        assert isinstance(fast.tail, ResizeConvTail) and len(fast.upsample) == len(model.upsample) - 3
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


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_unet_layer_norms_become_one_fused_norm_per_pixel(channels_last):
    torch.manual_seed(0)
    model = DeblurUNet(channels=8, encoder_blocks=[1, 1], middle_blocks=1, decoder_blocks=[1, 1]).eval()
    for norm in model.modules():
        if isinstance(norm, LayerNorm2d):  # not the identity they start as, so a lost affine part shows
            nn.init.uniform_(norm.weight, 0.5, 1.5)
            nn.init.uniform_(norm.bias, -0.2, 0.2)
    fast = for_inference(model)
    norms = [m for m in fast.modules() if isinstance(m, LayerNorm2d)]
    assert norms and all(type(m) is PixelLayerNorm for m in norms)
    assert all(type(m) is LayerNorm2d for m in model.modules() if isinstance(m, LayerNorm2d))  # the original
    x = torch.rand(2, 3, 20, 12) * 2  # not only [0, 1]: the norms see features of any scale
    features = torch.randn(2, 8, 5, 7) * 3 + 1
    if channels_last:
        x, features = (t.contiguous(memory_format=torch.channels_last) for t in (x, features))
    with torch.no_grad():
        assert (fast(x) - model(x)).abs().max() < 1e-5
        assert (norms[0](features) - model.encoders[0][0].norm1(features)).abs().max() < 1e-5


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


def resize_conv_step(channels: int = 6, bias: bool = True) -> tuple[nn.Upsample, nn.Conv2d, nn.PReLU, nn.Conv2d]:
    torch.manual_seed(0)
    prelu = nn.PReLU()
    nn.init.constant_(prelu.weight, 0.2)
    return (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias), prelu, nn.Conv2d(channels, 3, 9, padding=4))


# odd and even sizes, the two-pixel minimum of the ring recomputation, and the one-pixel fallback
@pytest.mark.parametrize("height,width", [(12, 10), (9, 7), (2, 2), (2, 5), (1, 4), (3, 1)])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_resize_conv_tail_equals_upsample_conv_prelu_tail(height, width, channels_last, bias):
    upsample, conv, prelu, tail = resize_conv_step(bias=bias)
    rewritten = ResizeConvTail(upsample, conv, prelu, tail)
    z = torch.randn(2, 6, height, width)
    if channels_last:
        rewritten, z = rewritten.to(memory_format=torch.channels_last), z.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected, got = tail(prelu(conv(upsample(z)))), rewritten(z)
    assert got.shape == expected.shape == (2, 3, 2 * height, 2 * width)
    assert (got - expected).abs().max() < 1e-5
    if min(height, width) >= 2:  # the phases alone are wrong near the outer ring: this test would see it unmended
        with torch.no_grad():
            phases = rewritten.phases(F.pad(z, (1, 1, 1, 1), mode="replicate"))
            unmended = F.pixel_shuffle(rewritten.tail(rewritten.prelu(phases)), 2)
        assert (unmended - expected).abs().max() > 1e-3


@pytest.mark.parametrize("step", [
    lambda up, conv: (nn.Upsample(scale_factor=2, mode="nearest"), conv),
    lambda up, conv: (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), conv),
    lambda up, conv: (up, nn.Conv2d(6, 6, 5, padding=2)),
    lambda up, conv: (up, nn.Conv2d(6, 6, 3, padding=1, padding_mode="replicate")),
    lambda up, conv: (up, nn.Conv2d(6, 6, 3, padding=1, stride=2))],
    ids=["nearest", "align-corners", "5x5", "replicate-padded", "strided"])
def test_resize_conv_tail_refuses_what_it_cannot_rewrite(step):
    upsample, conv, prelu, tail = resize_conv_step()
    upsample, conv = step(upsample, conv)
    with pytest.raises(ValueError, match="ResizeConvTail needs"):
        ResizeConvTail(upsample, conv, prelu, tail)


@pytest.mark.parametrize("model", [SRResNet(scale=4, num_blocks=1, channels=8),
                                   SRResNet(scale=4, num_blocks=1, channels=8, upsample="bilinear"),
                                   DeblurGANGenerator(8, 1), TransformerNet(channels=4, num_blocks=1)],
                         ids=["SRResNet-pixelshuffle", "SRResNet-bilinear", "DeblurGANGenerator", "TransformerNet"])
def test_to_bf16_computes_in_bf16_and_returns_fp32(model):
    torch.manual_seed(0)
    for parameter in model.parameters():  # DeblurGAN's tail starts at zero: give every layer some weight
        torch.nn.init.normal_(parameter, std=0.1)
    model.eval()
    fast = to_bf16(for_inference(model))
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.dtype == torch.bfloat16 for c in convs)
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        reference, out = model(x), fast(x)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    diff = (out - reference).abs()
    assert diff.max() > 0 and diff.mean() < 0.01  # bf16 did run (not fp32), and stayed near fp32
    assert next(model.parameters()).dtype == torch.float32  # the original is untouched
