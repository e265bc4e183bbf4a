import pytest
import torch

from ganzoo.cli import main
from ganzoo.models.srgan import SRResNet

pytest.importorskip("onnxruntime")
from ganzoo.export import export_onnx, onnx_session, run_onnx


@pytest.fixture(scope="module", params=["pixelshuffle", "bilinear"])
def tiny_sr(request) -> SRResNet:
    torch.manual_seed(0)
    model = SRResNet(scale=4, num_blocks=1, channels=8, upsample=request.param).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that folding them is tested too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


def test_exported_model_matches_pytorch_at_other_sizes(tmp_path, tiny_sr):
    path = export_onnx(tiny_sr, tmp_path / "sub" / "tiny.onnx")
    session = onnx_session(path)
    for shape in ((1, 3, 12, 10), (2, 3, 7, 19)):  # batch, height and width are all dynamic
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[2]))
        with torch.no_grad():
            expected = tiny_sr(x)
        got = run_onnx(session, x)
        assert got.shape == (shape[0], 3, 4 * shape[2], 4 * shape[3])
        assert (got - expected).abs().max() < 1e-4


def test_export_leaves_the_model_alone(tmp_path, tiny_sr):
    before = {k: v.clone() for k, v in tiny_sr.state_dict().items()}
    export_onnx(tiny_sr, tmp_path / "tiny.onnx")
    assert not tiny_sr.training
    assert all(torch.equal(before[k], v) for k, v in tiny_sr.state_dict().items())


def test_cli_export_onnx(tmp_path, capsys, tiny_sr):
    folder, target = tmp_path / "model", tmp_path / "out" / "tiny.onnx"
    tiny_sr.save_pretrained(folder)
    assert main(["export-onnx", "--model", str(folder), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (run_onnx(onnx_session(target), x) - tiny_sr(x)).abs().max() < 1e-4


def test_cli_export_onnx_refuses_bicubic(tmp_path, capsys):
    assert main(["export-onnx", "--model", "bicubic", "-o", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
