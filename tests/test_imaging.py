import io
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.imaging import (
    ImageError,
    check_tile,
    image_to_tensor,
    imresize,
    load_image,
    make_grid_image,
    mod_crop,
    quantize,
    tensor_to_image,
    tiled_apply,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


# --- imresize against a plain NumPy transcription of MATLAB's algorithm -------


def _matlab_cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _matlab_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense [out, in] resampling matrix, one output pixel at a time, as imresize.m builds it."""
    kernel_scale = min(scale, 1.0)  # antialiasing widens the kernel when shrinking
    width = 4.0 / kernel_scale
    matrix = np.zeros((out_len, in_len))
    for out in range(1, out_len + 1):
        centre = out / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(centre - width / 2)
        taps = [
            (j, kernel_scale * _matlab_cubic((centre - j) * kernel_scale))
            for j in range(left, left + math.ceil(width) + 2)
        ]
        total = sum(weight for _, weight in taps)
        for j, weight in taps:
            k = j - 1
            while not 0 <= k < in_len:  # symmetric padding
                k = -k - 1 if k < 0 else 2 * in_len - 1 - k
            matrix[out - 1, k] += weight / total
    return matrix


def _reference_imresize(
    img: np.ndarray, out_h: int, out_w: int, scale_h: float, scale_w: float
) -> np.ndarray:
    rows = _matlab_matrix(img.shape[-2], out_h, scale_h)
    cols = _matlab_matrix(img.shape[-1], out_w, scale_w)
    return rows @ img @ cols.T


@pytest.mark.parametrize("scale", [1 / 4, 1 / 2, 1 / 3, 4])
def test_imresize_matches_reference_for_scales(scale):
    img = torch.rand(2, 3, 24, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = imresize(img, scale=scale)
    out_h, out_w = math.ceil(24 * scale), math.ceil(21 * scale)
    assert out.shape == (2, 3, out_h, out_w)
    expected = _reference_imresize(img.numpy(), out_h, out_w, scale, scale)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-10)


def test_imresize_matches_reference_for_size():
    img = torch.rand(1, 2, 20, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = imresize(img, size=(13, 27))
    expected = _reference_imresize(img.numpy(), 13, 27, 13 / 20, 27 / 16)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-10)


def test_imresize_float32_and_no_clamping():
    img = torch.zeros(1, 1, 16, 16)
    img[..., 6:10, 6:10] = 1.0
    up = imresize(img, scale=3)
    assert up.dtype == torch.float32
    assert up.min() < 0 and up.max() > 1  # bicubic overshoot is kept for the caller to clamp
    np.testing.assert_allclose(
        up.double().numpy(), imresize(img.double(), scale=3).numpy(), atol=1e-6
    )


def test_imresize_keeps_a_constant_image_constant():
    img = torch.full((1, 3, 32, 28), 0.7, dtype=torch.float64)
    roundtrip = imresize(imresize(img, scale=0.25), scale=4)
    assert roundtrip.shape == img.shape
    torch.testing.assert_close(roundtrip, img, atol=1e-12, rtol=0)


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_imresize_agrees_with_pil_bicubic_on_a_smooth_image(factor):
    yy, xx = np.mgrid[0:48, 0:40].astype(np.float32)
    smooth = 0.5 + 0.3 * np.sin(xx / 7) * np.cos(yy / 5)
    size = (int(40 * factor), int(48 * factor))
    expected = np.asarray(Image.fromarray(smooth).resize(size, Image.Resampling.BICUBIC))
    out = imresize(torch.from_numpy(smooth)[None, None], scale=factor)[0, 0].numpy()
    inner = (slice(6, -6), slice(6, -6))  # the two differ only in border handling
    np.testing.assert_allclose(out[inner], expected[inner], atol=1e-5)


@pytest.mark.parametrize(
    "args,message",
    [
        (dict(), "exactly one"),
        (dict(scale=2, size=(4, 4)), "exactly one"),
        (dict(scale=-1), "positive"),
        (dict(size=(0, 4)), "positive"),
    ],
)
def test_imresize_validates_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        imresize(torch.rand(1, 3, 8, 8), **args)
    with pytest.raises(ValueError, match="float tensor"):
        imresize(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), scale=2)


def test_mod_crop_and_quantize():
    x = torch.rand(1, 3, 23, 18)
    assert mod_crop(x, 4).shape == (1, 3, 20, 16)
    torch.testing.assert_close(mod_crop(x, 4), x[..., :20, :16])
    q = quantize(torch.tensor([-0.2, 0.5, 0.1234, 1.7]))
    torch.testing.assert_close(q, torch.tensor([0.0, 128 / 255, 31 / 255, 1.0]))


# --- loading and conversion --------------------------------------------------------


def _quadrant_image() -> Image.Image:
    """40 wide, 20 high: red top-left quadrant, blue elsewhere."""
    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 20, 10))
    return img


@pytest.mark.parametrize(
    "orientation,size,red_corner",
    [(3, (40, 20), "bottom-right"), (6, (20, 40), "top-right"), (8, (20, 40), "bottom-left")],
)
def test_exif_orientation_is_applied(tmp_path, orientation, size, red_corner):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    _quadrant_image().save(path, exif=exif, quality=95)
    img = load_image(path)
    assert img.size == size
    w, h = size
    x = w // 4 if "left" in red_corner else 3 * w // 4
    y = h // 4 if "top" in red_corner else 3 * h // 4
    r, _, b = img.convert("RGB").getpixel((x, y))
    assert r > 200 and b < 60


def test_palette_png_transparency_becomes_alpha(tmp_path):
    img = Image.new("P", (8, 6))
    img.putpalette([255, 0, 0, 0, 255, 0])
    img.paste(1, (4, 0, 8, 6))
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)
    rgb, alpha, depth = image_to_tensor(load_image(path))
    assert depth == 8 and rgb.shape == (1, 3, 6, 8) and alpha.shape == (1, 1, 6, 8)
    assert alpha[..., :4].max() == 0 and alpha[..., 4:].min() == 1
    torch.testing.assert_close(rgb[0, :, 0, 5], torch.tensor([0.0, 1.0, 0.0]))


def test_rgba_round_trip_keeps_alpha(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (9, 7, 4), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(arr).save(path)
    rgb, alpha, depth = image_to_tensor(load_image(path))
    out = tensor_to_image(rgb, alpha, depth)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_grey_with_alpha_gives_equal_channels(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (6, 5, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(arr).save(path)
    rgb, alpha, _ = image_to_tensor(load_image(path))
    for channel in range(3):
        np.testing.assert_allclose(rgb[0, channel].numpy() * 255, arr[..., 0], atol=1e-4)
    np.testing.assert_allclose(alpha[0, 0].numpy() * 255, arr[..., 1], atol=1e-4)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    rgb, alpha, depth = image_to_tensor(load_image(path))
    assert alpha is None and depth == 8
    torch.testing.assert_close(rgb[0, :, 8, 8], torch.tensor([1.0, 0.0, 0.0]), atol=0.05, rtol=0)


def test_16_bit_grey_png_keeps_its_values(tmp_path):
    arr = np.random.default_rng(2).integers(0, 65536, (10, 12), dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(arr).save(path)
    rgb, alpha, depth = image_to_tensor(load_image(path))
    assert depth == 16 and alpha is None and rgb.shape == (1, 3, 10, 12)
    np.testing.assert_allclose(rgb[0, 1].numpy() * 65535, arr, atol=0.01)
    out = tensor_to_image(rgb, bit_depth=16)
    assert out.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(out), arr)
    # model output from grey input is only nearly grey; it still counts as grey
    nearly = rgb + torch.tensor([0.0, 1e-4, -1e-4]).view(1, 3, 1, 1)
    assert tensor_to_image(nearly, bit_depth=16).mode == "I;16"
    assert tensor_to_image(rgb, bit_depth=8).mode == "RGB"


@pytest.mark.parametrize(
    "arr,expected",
    [
        (np.array([[0, 65535]], dtype=np.int32), [0.0, 1.0]),
        (np.array([[0, 2**31 - 1]], dtype=np.int32), [0.0, 1.0]),
        (np.array([[-0.5, 0.25]], dtype=np.float32), [0.0, 0.25]),
    ],
    ids=["I-16bit", "I-32bit", "F"],
)
def test_high_depth_modes(arr, expected):
    rgb, alpha, depth = image_to_tensor(Image.fromarray(arr))
    assert depth == 16 and alpha is None
    torch.testing.assert_close(rgb[0, 2, 0], torch.tensor(expected))


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, (0, 255, 0), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = load_image(path)
    assert not getattr(img, "is_animated", False)
    assert img.convert("RGB").getpixel((4, 4)) == RED


def test_other_sources(tmp_path):
    path = tmp_path / "q.png"
    _quadrant_image().save(path)
    data = path.read_bytes()
    for source in (str(path), data, io.BytesIO(data), Image.open(path)):
        assert load_image(source).size == (40, 20)
    assert load_image(np.zeros((5, 7), np.uint16)).mode == "I;16"
    assert load_image(np.zeros((5, 7, 1), np.uint8)).mode == "L"
    assert load_image(np.full((5, 7, 3), 0.5)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.full((5, 7, 4), 65535, np.uint16)).getpixel((0, 0)) == (255,) * 4


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size but holds no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _truncated_png() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.mark.parametrize(
    "content,kwargs,message",
    [
        (b"", {}, "not an image"),
        (b"hello, I am text", {}, "cannot identify"),
        (_truncated_png(), {}, "truncated or corrupt"),
        (_png_header(20, 20), {"max_pixels": 100}, "exceeds the limit of 100"),
        (_png_header(5000, 5000), {}, "exceeds the limit"),
        (_png_header(30000, 30000), {}, "decompression bomb"),
    ],
    ids=["empty", "text", "truncated", "small-limit", "over-default", "bomb"],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path, **kwargs)
    assert "bad.png" in str(info.value)


def test_missing_file_raises_image_error(tmp_path):
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize(
    "arr,message",
    [
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[0.5, np.inf]], dtype=np.float32), "NaN or Inf"),
        (np.array([[0.5, 1.5]]), r"\[0, 1\]"),
        (np.zeros((4, 4, 2), np.uint8), "is not HxW"),
        (np.zeros((4, 4), np.int64), "unsupported array dtype"),
        (np.zeros((20, 20), np.uint8), "exceeds the limit"),
    ],
)
def test_bad_arrays_raise_image_error(arr, message):
    with pytest.raises(ImageError, match=message):
        load_image(arr, max_pixels=300)


def test_tensor_to_image_validates():
    with pytest.raises(ValueError, match="bit_depth"):
        tensor_to_image(torch.rand(3, 4, 4), bit_depth=12)
    with pytest.raises(ValueError, match="RGB of shape"):
        tensor_to_image(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="resize it first"):
        tensor_to_image(torch.rand(3, 4, 4), torch.rand(1, 1, 8, 8))


def test_make_grid_image():
    grid = make_grid_image(torch.rand(5, 1, 8, 8), nrow=3)
    assert grid.mode == "RGB" and grid.size == (3 * 10 + 2, 2 * 10 + 2)


# --- tiling -------------------------------------------------------------------


def _net(scale: int) -> nn.Module:
    """Three 3x3 convolutions: a receptive radius of 3 input pixels."""
    torch.manual_seed(0)
    head = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    tail = (
        [nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2)]
        if scale == 2
        else [nn.Conv2d(8, 3, 3, padding=1)]
    )
    return nn.Sequential(*head, *tail).eval()


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("size", [(37, 50), (13, 41)])
@pytest.mark.parametrize("batch_tiles", [1, 3])
def test_tiled_apply_equals_untiled(scale, size, batch_tiles):
    net = _net(scale)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(4))
    calls = []

    def fn(tiles: torch.Tensor) -> torch.Tensor:
        calls.append(tiles.shape)
        return net(tiles)

    with torch.no_grad():
        expected = net(x)
        out = tiled_apply(fn, x, tile=16, overlap=4, scale=scale, batch_tiles=batch_tiles)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert len(calls) > 1 and all(shape[0] <= 2 * batch_tiles for shape in calls)


def test_tiled_apply_calls_fn_once_for_a_small_image():
    x = torch.rand(1, 3, 16, 12)
    calls = []
    out = tiled_apply(lambda t: calls.append(t) or t * 2, x, tile=16, overlap=4)
    assert len(calls) == 1 and calls[0] is x
    torch.testing.assert_close(out, x * 2)


def test_tiled_apply_validates():
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="tile must be more than 8 \\(tiles overlap by 4 pixels on each side\\), got 8"):
        tiled_apply(lambda t: t, x, tile=8, overlap=4)
    with pytest.raises(ValueError, match="overlap must be >= 0, got -1"):
        tiled_apply(lambda t: t, x, tile=16, overlap=-1)
    with pytest.raises(ValueError, match="batch_tiles"):
        tiled_apply(lambda t: t, x, tile=16, overlap=4, batch_tiles=0)
    with pytest.raises(ValueError, match="for scale 2"):
        tiled_apply(lambda t: t, x, tile=16, overlap=4, scale=2)


def test_one_tile_check_names_the_option_it_checks():
    check_tile(None, 16)  # untiled
    check_tile(33, 16)
    with pytest.raises(ValueError, match="^--tile must be more than 32 \\(tiles overlap by 16 pixels on each side\\), "
                                         "got 32$"):
        check_tile(32, 16, "--tile")
    with pytest.raises(ValueError, match="^overlap must be >= 0"):
        check_tile(None, -1)


def test_the_package_re_exports_every_public_name_of_its_modules():
    import inspect

    import ganzoo.imaging as imaging
    from ganzoo.imaging import grids, resize, tiling
    from ganzoo.imaging import io as image_io

    for module in (grids, image_io, resize, tiling):
        # defined in the module itself: its own functions and classes, and its constants (no __module__)
        public = {name for name, value in vars(module).items() if not name.startswith("_")
                  and not inspect.ismodule(value) and getattr(value, "__module__", module.__name__) == module.__name__}
        assert public <= set(imaging.__all__), (module.__name__, public - set(imaging.__all__))
        assert public, module.__name__
    assert all(hasattr(imaging, name) for name in imaging.__all__)


def test_captioned_sheet_places_each_image_under_its_caption():
    from ganzoo.imaging import captioned_sheet

    red, blue = Image.new("RGB", (10, 10), "red"), Image.new("RGB", (300, 200), "blue")
    sheet = captioned_sheet([[(red, "a"), (blue, "b")], [(blue, "c")]], cell=50, pad=4, caption_height=18)
    assert sheet.size == (2 * 54 + 4, 2 * (50 + 18 + 4) + 4)
    assert sheet.getpixel((4 + 25, 4 + 18 + 25)) == (255, 0, 0)  # enlarged into the first cell
    assert sheet.getpixel((58 + 25, 4 + 18 + 25)) == (0, 0, 255)  # shrunk into the second
    assert sheet.getpixel((58 + 25, 76 + 18 + 25)) == (255, 255, 255)  # the second row has one image
