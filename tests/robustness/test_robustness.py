"""Hostile and unusual inputs through every entry point: the Python API, the CLI and the app.

`make_corpus(folder)` GENERATES the inputs (nothing is stored in the repo): damaged files,
odd sizes, decompression bombs, unusual modes and formats, EXIF rotations, and for the
Python API NaN/Inf/complex/object/5-D arrays. Each case says whether it must give an
image (and which properties the result must have) or a clear error.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import pipelines
from ganzoo.hub import ModelLoadError
from ganzoo.imaging import IMAGE_SUFFIXES, ImageError

REPO = Path(__file__).resolve().parents[2]
SCALE = 4
APP_CALL_TIMEOUT_S = 30


# -- the corpus ----------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    source: Path | np.ndarray
    ok: bool  # True: a result image is expected; False: a clear error
    size: tuple[int, int] | None = None  # (width, height) of the result at SCALE, when ok
    mode: str | None = None  # the result's PIL mode, when it matters
    check: Callable[[Image.Image], None] | None = None
    error: str | None = None  # a regex the error message must match
    in_app: bool = True  # can be uploaded to the app (a file with content)
    tags: set[str] = field(default_factory=set)

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, Path)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes | None) -> bytes:
    """A minimal PNG: IHDR (any declared size), one IDAT of `raw_rows` (filter bytes included), IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(raw_rows if raw_rows is not None else b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_rgb16(arr: np.ndarray) -> bytes:
    """A 16-bit RGB PNG from a uint16 HxWx3 array (Pillow cannot write these)."""
    height, width, _ = arr.shape
    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(height))
    return png_bytes(width, height, 16, 2, rows)


def _gradient(width: int, height: int, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), ((x + y) * 7 % 256)]
    return np.stack(planes[:channels], -1).astype(np.uint8)


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def _exif_jpeg(path: Path, orientation: int) -> Path:
    """A 24x16 JPEG (stored pixels) with a red top-left quarter and an EXIF orientation tag."""
    arr = np.full((16, 24, 3), 40, np.uint8)
    arr[:8, :12] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(img, path, exif=exif, quality=95)


def _red_corner(expected: str) -> Callable[[Image.Image], None]:
    """The red block of `_exif_jpeg` must sit in the `expected` corner once orientation is applied."""
    def check(img: Image.Image) -> None:
        arr = np.asarray(img.convert("RGB")).astype(float)
        h, w = arr.shape[:2]
        corners = {"top-left": arr[: h // 4, : w // 4], "top-right": arr[: h // 4, -w // 4:],
                   "bottom-left": arr[-h // 4:, : w // 4], "bottom-right": arr[-h // 4:, -w // 4:]}
        redness = {k: (v[..., 0] - v[..., 1]).mean() for k, v in corners.items()}
        assert max(redness, key=redness.get) == expected, redness
    return check


def _alpha_kept(transparent_box: tuple[int, int, int, int] | None = None) -> Callable[[Image.Image], None]:
    def check(img: Image.Image) -> None:
        alpha = np.asarray(img.getchannel("A"))
        assert alpha.max() == 255, "the opaque part lost its alpha"
        if transparent_box is not None:
            x0, y0, x1, y1 = (v * SCALE for v in transparent_box)
            # away from the edge of the transparent region (bicubic rings there)
            assert alpha[y0 + 8:y1 - 8, x0 + 8:x1 - 8].max() == 0, "the transparent region became visible"
    return check


def _sixteen_bit(img: Image.Image) -> None:
    arr = np.asarray(img)
    assert arr.dtype == np.uint16 or arr.max() > 255, "16-bit data was squeezed to 8 bits"
    values = np.unique(arr)
    assert len(values) > 256 or (values % 257 != 0).any(), "only 8-bit levels remain"


def make_corpus(folder: Path) -> list[Case]:
    """Write the hostile/unusual files into `folder` and return every case (arrays included)."""
    folder.mkdir(parents=True, exist_ok=True)
    f = folder.__truediv__
    good = Image.fromarray(_gradient(20, 12))
    png_data = io.BytesIO()
    good.save(png_data, "PNG")
    jpeg_data = io.BytesIO()
    good.save(jpeg_data, "JPEG", quality=90)
    cases: list[Case] = []

    def add(name: str, source, ok: bool, **kw) -> None:
        cases.append(Case(name, source, ok, **kw))

    # damaged or not images at all
    f("empty.png").write_bytes(b"")
    add("empty.png", f("empty.png"), False, error="empty|not an image")
    f("truncated.png").write_bytes(png_data.getvalue()[: len(png_data.getvalue()) // 2])
    add("truncated.png", f("truncated.png"), False, error="truncated|corrupt")
    f("truncated.jpg").write_bytes(jpeg_data.getvalue()[: len(jpeg_data.getvalue()) // 2])
    add("truncated.jpg", f("truncated.jpg"), False, error="truncated|corrupt")
    f("header_only.png").write_bytes(png_data.getvalue()[:40])
    add("header_only.png", f("header_only.png"), False, error="truncated|corrupt|not an image")
    f("text.png").write_text("this is not a picture\n" * 10)
    add("text.png", f("text.png"), False, error="not an image")
    f("random_bytes.jpg").write_bytes(np.random.default_rng(0).bytes(4096))
    add("random_bytes.jpg", f("random_bytes.jpg"), False, error="not an image")
    # a 30000x30000 header: 900 Mpx declared, no pixel data allocated here
    f("bomb.png").write_bytes(png_bytes(30000, 30000, 8, 2, None))
    add("bomb.png", f("bomb.png"), False, error="pixels|decompression bomb")
    f("bomb_under_pillow_limit.png").write_bytes(png_bytes(5000, 5000, 8, 0, None))  # 25 Mpx > MAX_PIXELS
    add("bomb_under_pillow_limit.png", f("bomb_under_pillow_limit.png"), False, error="exceeds the limit")
    f("zero_width.png").write_bytes(png_bytes(0, 10, 8, 0, None))
    add("zero_width.png", f("zero_width.png"), False, error="empty|corrupt|not an image|truncated")
    # not a regular file
    f("folder.png").mkdir()
    # a folder named like an image: the Python API refuses it; the CLI expands folders, so an empty one
    # given by name adds nothing (no output, no error line) and one inside the corpus folder is not listed
    add("folder.png", f("folder.png"), False, error="cannot read", in_app=False, tags={"not-file", "folder"})
    (f("dangling.png")).symlink_to(folder / "does-not-exist.png")
    add("dangling.png", f("dangling.png"), False, error="cannot read", in_app=False, tags={"not-file"})

    # odd sizes
    add("1x1.png", _save(Image.new("RGB", (1, 1), (10, 200, 30)), f("1x1.png")), True, size=(4, 4), mode="RGB",
        tags={"model"})
    add("2x3.png", _save(Image.fromarray(_gradient(2, 3)), f("2x3.png")), True, size=(8, 12), mode="RGB",
        tags={"model"})
    add("1x4000.png", _save(Image.fromarray(_gradient(1, 4000)), f("1x4000.png")), True, size=(4, 16000))
    add("4000x1.png", _save(Image.fromarray(_gradient(4000, 1)), f("4000x1.png")), True, size=(16000, 4),
        tags={"model"})

    # modes and bit depths
    cmyk = Image.fromarray(_gradient(16, 12)).convert("CMYK")
    add("cmyk.jpg", _save(cmyk, f("cmyk.jpg"), quality=95), True, size=(64, 48), mode="RGB", tags={"model"})
    grey16 = (np.arange(16 * 24, dtype=np.uint16).reshape(16, 24) * 171).astype(np.uint16)
    add("grey16.png", _save(Image.fromarray(grey16), f("grey16.png")), True, size=(96, 64), mode="I;16",
        check=_sixteen_bit)
    rgb16 = (_gradient(16, 12).astype(np.uint16) * 257 + 3)
    f("rgb16.png").write_bytes(png_rgb16(rgb16))
    add("rgb16.png", f("rgb16.png"), True, size=(64, 48), mode="RGB", tags={"model"})
    palette = Image.fromarray(_gradient(24, 24)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    add("palette_transparent.png", _save(palette, f("palette_transparent.png"), transparency=0), True,
        size=(96, 96), mode="RGBA", check=_alpha_kept())
    rgba = np.dstack([_gradient(48, 32), np.full((32, 48), 255, np.uint8)])
    rgba[:, 24:, 3] = 0  # the right half fully transparent
    add("rgba_transparent.png", _save(Image.fromarray(rgba), f("rgba_transparent.png")), True, size=(192, 128),
        mode="RGBA", check=_alpha_kept((24, 0, 48, 32)), tags={"model"})
    la = Image.fromarray(np.dstack([_gradient(20, 20, 1)[..., 0], np.full((20, 20), 128, np.uint8)]), "LA")
    add("la.png", _save(la, f("la.png")), True, size=(80, 80), mode="LA")  # grey stays grey
    add("grey.jpg", _save(Image.fromarray(_gradient(16, 16, 1)[..., 0]), f("grey.jpg")), True, size=(64, 64),
        mode="L")
    add("bilevel.png", _save(Image.fromarray(_gradient(16, 8)).convert("1"), f("bilevel.png")), True,
        size=(64, 32), mode="L")

    # formats
    frames = [Image.fromarray(np.full((10, 14, 3), c, np.uint8)) for c in (0, 128, 255)]
    frames[0].save(f("animated.gif"), save_all=True, append_images=frames[1:], duration=50, loop=0)
    add("animated.gif", f("animated.gif"), True, size=(56, 40),
        check=lambda img: _assert(np.asarray(img.convert("L")).max() <= 8, "not the first frame"))
    add("tiff.tif", _save(Image.fromarray(_gradient(10, 6)), f("tiff.tif")), True, size=(40, 24))
    add("tiff16.tif", _save(Image.fromarray(grey16), f("tiff16.tif")), True, size=(96, 64), mode="I;16")
    add("webp.webp", _save(Image.fromarray(_gradient(10, 6)), f("webp.webp"), lossless=True), True, size=(40, 24))
    add("bmp.bmp", _save(Image.fromarray(_gradient(10, 6)), f("bmp.bmp")), True, size=(40, 24))
    add("png_named.jpg", _save(Image.fromarray(_gradient(10, 6)), f("png_named.jpg"), format="PNG"), True,
        size=(40, 24))
    add("UPPER.PNG", _save(Image.fromarray(_gradient(5, 5)), f("UPPER.PNG")), True, size=(20, 20))
    add("name with spaces é.png", _save(Image.fromarray(_gradient(5, 5)), f("name with spaces é.png")), True,
        size=(20, 20))

    # EXIF orientation: the stored image is 24x16 with red top-left
    for orientation, size, corner in ((3, (96, 64), "bottom-right"), (6, (64, 96), "top-right"),
                                      (8, (64, 96), "bottom-left")):
        name = f"exif{orientation}.jpg"
        add(name, _exif_jpeg(f(name), orientation), True, size=size, mode="RGB", check=_red_corner(corner),
            tags={"model"} if orientation == 6 else set())

    # arrays (Python API only)
    for name, arr, message in [
        ("nan array", np.full((8, 8, 3), np.nan, np.float32), "NaN"),
        ("inf array", np.full((8, 8), np.inf, np.float64), "NaN or Inf"),
        ("complex array", np.zeros((8, 8, 3), np.complex64), "dtype"),
        ("object array", np.full((8, 8), None, object), "dtype"),
        ("bool array", np.zeros((8, 8), bool), "dtype"),
        ("int64 array", np.zeros((8, 8, 3), np.int64), "dtype"),
        ("5-D array", np.zeros((1, 1, 8, 8, 3), np.uint8), "shape"),
        ("2-channel array", np.zeros((8, 8, 2), np.uint8), "shape"),
        ("empty array", np.zeros((0, 8, 3), np.uint8), "empty"),
        ("out-of-range float array", np.full((8, 8, 3), 2.0, np.float32), r"\[0, 1\]"),
    ]:
        add(name, arr, False, error=message, in_app=False)
    add("float grey array", np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), True, size=(32, 32),
        mode="I;16", in_app=False)
    add("uint16 rgb array", (_gradient(8, 8).astype(np.uint16) * 257), True, size=(32, 32), mode="RGB",
        in_app=False)
    add("non-contiguous array", _gradient(16, 8)[:, ::2], True, size=(32, 32), mode="RGB", in_app=False)
    return cases


def _assert(condition: bool, message: str) -> None:
    assert condition, message


def check_result(case: Case, img: Image.Image, scale: int = SCALE, content: bool = True) -> None:
    """Size and mode always; the content checks only where the upscaler keeps colours (not a random model)."""
    assert isinstance(img, Image.Image), case.name
    if case.size is not None:
        expected = tuple(s * scale // SCALE for s in case.size)
        assert img.size == expected, f"{case.name}: {img.size} != {expected}"
    if case.mode is not None:
        assert img.mode == case.mode, f"{case.name}: mode {img.mode} != {case.mode}"
    if content and case.check is not None:
        case.check(img)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Case]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


def test_corpus_is_big_and_varied(corpus):
    _, cases = corpus
    assert len(cases) >= 30
    assert sum(c.ok for c in cases) >= 10 and sum(not c.ok for c in cases) >= 10
    assert len({c.name for c in cases}) == len(cases)


# -- the Python API ------------------------------------------------------------------------------------

def test_upscale_bicubic_on_every_case(corpus):
    _, cases = corpus
    for case in cases:
        if case.ok:
            check_result(case, pipelines.upscale(case.source, None, scale=SCALE, device="cpu"))
        else:
            with pytest.raises(ImageError) as err:
                pipelines.upscale(case.source, None, scale=SCALE, device="cpu")
            message = str(err.value)
            if case.is_file:
                assert message.startswith(f"{case.source}: "), f"{case.name}: the error does not name the file"
                message = message[len(str(case.source)) + 2:]
            assert re.search(case.error or ".", message), f"{case.name}: {message!r} !~ {case.error!r}"


@pytest.fixture(scope="module")
def tiny_sr():
    from ganzoo.models.srgan import SRResNet

    torch.manual_seed(0)
    return SRResNet(scale=4, num_blocks=1, channels=8).eval()


def test_upscale_with_a_model_on_selected_cases(corpus, tiny_sr):
    _, cases = corpus
    chosen = [c for c in cases if "model" in c.tags] + [c for c in cases if not c.ok][:6]
    assert len(chosen) >= 10
    for case in chosen:
        if case.ok:
            check_result(case, pipelines.upscale(case.source, tiny_sr, device="cpu"), content=False)
        else:
            with pytest.raises(ImageError, match=case.error):
                pipelines.upscale(case.source, tiny_sr, device="cpu")


def test_sixteen_bit_grey_keeps_its_values(corpus):
    """Bicubic x1-ish sanity: a 16-bit grey image upscaled stays I;16 with the input's value range."""
    folder, _ = corpus
    src = np.asarray(Image.open(folder / "grey16.png"))
    out = np.asarray(pipelines.upscale(folder / "grey16.png", None, scale=SCALE, device="cpu"))
    assert out.dtype == np.uint16
    assert abs(int(out.min()) - int(src.min())) < 600 and abs(int(out.max()) - int(src.max())) < 600


def test_the_same_image_from_path_bytes_stream_and_pil_is_the_same(corpus):
    folder, _ = corpus
    path = folder / "rgba_transparent.png"
    results = [pipelines.upscale(s, None, device="cpu") for s in
               (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), Image.open(path))]
    arrays = [np.asarray(r) for r in results]
    assert all(np.array_equal(arrays[0], a) for a in arrays[1:])


def test_unsupported_source_types_are_clear_errors():
    for source in (None, 3, 2.5, ["a.png"], {"path": "a.png"}, torch.zeros(1, 3, 4, 4)):
        with pytest.raises(ImageError, match="unsupported image source"):
            pipelines.upscale(source, None, device="cpu")


# -- the command line ----------------------------------------------------------------------------------

def test_cli_over_the_whole_corpus_in_one_call(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    # The folder gives the regular files with an image suffix; the directory and the dangling symlink are
    # skipped by a folder listing, so they are also named explicitly (each must then be one error line).
    extra = [str(folder / c.name) for c in cases if "not-file" in c.tags]
    result = subprocess.run([sys.executable, "-m", "ganzoo.cli", "upscale", str(folder), *extra, "-o", str(out),
                             "--model", "bicubic", "--device", "cpu"], check=False, capture_output=True, text=True,
                            timeout=180,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, result.stderr[-3000:]
    listed = {c.name for c in cases if c.is_file and "not-file" not in c.tags
              and Path(c.name).suffix.lower() in IMAGE_SUFFIXES}
    expected_errors = {c.name for c in cases if c.is_file and not c.ok and "folder" not in c.tags
                       and (c.name in listed or "not-file" in c.tags)}
    expected_ok = {c.name for c in cases if c.is_file and c.ok and c.name in listed}
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for name in expected_errors:
        mine = [line for line in error_lines if line.startswith(f"error: {folder / name}:")]
        assert len(mine) == 1, f"{name}: {len(mine)} error lines\n{result.stderr[-3000:]}"
    assert len(error_lines) == len(expected_errors), "\n".join(error_lines)
    written = {p.name for p in out.iterdir()}
    assert written == {f"{Path(n).stem}.png" for n in expected_ok}
    by_name = {c.name: c for c in cases}
    for name in expected_ok:
        with Image.open(out / f"{Path(name).stem}.png") as img:
            check_result(by_name[name], img)


# -- untrusted model files (what tests/test_hub.py does not cover) -------------------------------------

@pytest.fixture
def model_dir(tmp_path) -> Path:
    from ganzoo.models.srgan import SRResNet

    folder = tmp_path / "model"
    SRResNet(scale=4, num_blocks=1, channels=8).save_pretrained(folder)
    return folder


def _load(folder: Path):
    import ganzoo

    return ganzoo.load(str(folder))


def test_config_that_is_ten_megabytes_is_refused(model_dir):
    (model_dir / "config.json").write_text(json.dumps({"_class_name": "SRResNet", "pad": "x" * 10_000_000}))
    with pytest.raises(ModelLoadError, match="larger than"):
        _load(model_dir)


@pytest.mark.parametrize("text", ["[1, 2, 3]", '"SRResNet"', "null", "42", "{", "", "\x00\xff", '{"a": NaN}'])
def test_config_that_is_not_an_object_is_refused(model_dir, text):
    (model_dir / "config.json").write_bytes(text.encode("utf-8", "surrogateescape") if text != "\x00\xff"
                                            else b"\x00\xff")
    with pytest.raises(ModelLoadError):
        _load(model_dir)


def test_deeply_nested_config_is_refused(model_dir):
    (model_dir / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError):
        _load(model_dir)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not safetensors" * 10, b"\xff" * 8 + b"{}",
                                     struct.pack("<Q", 1 << 40) + b"{}"])
def test_garbage_safetensors_is_a_clear_error(model_dir, content):
    from safetensors import SafetensorError

    (model_dir / "model.safetensors").write_bytes(content)
    try:
        _load(model_dir)
    except ModelLoadError as err:
        assert "model.safetensors" in str(err)
    except SafetensorError as err:  # a clear message, but not the documented exception and no file name
        pytest.fail(f"SafetensorError instead of ModelLoadError: {err}")
    else:
        pytest.fail("garbage weights loaded")


def test_truncated_safetensors_is_a_clear_error(model_dir):
    """A header that claims more bytes than the file holds."""
    from safetensors import SafetensorError

    data = (model_dir / "model.safetensors").read_bytes()
    (model_dir / "model.safetensors").write_bytes(data[: len(data) // 2])
    try:
        _load(model_dir)
    except ModelLoadError:
        pass
    except SafetensorError as err:
        pytest.fail(f"SafetensorError instead of ModelLoadError: {err}")


def test_empty_but_valid_safetensors_names_the_missing_tensors(model_dir):
    (model_dir / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    with pytest.raises(ModelLoadError, match="missing"):
        _load(model_dir)


def test_symlinked_weights_load(model_dir, tmp_path):
    elsewhere = tmp_path / "weights.safetensors"
    (model_dir / "model.safetensors").rename(elsewhere)
    (model_dir / "model.safetensors").symlink_to(elsewhere)
    assert _load(model_dir).scale == 4


def test_weights_that_are_a_folder_or_dangling_link_are_clear_errors(model_dir):
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.safetensors").symlink_to(model_dir / "nowhere")
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        _load(model_dir)
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.safetensors").mkdir()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        _load(model_dir)


@pytest.mark.parametrize("file,content", [("model.safetensors", b"garbage"),
                                          ("config.json", b"[" * 100_000 + b"]" * 100_000)])
def test_cli_with_a_garbage_model_is_one_error_line(model_dir, tmp_path, file, content):
    (model_dir / file).write_bytes(content)
    image = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(image)
    result = subprocess.run([sys.executable, "-m", "ganzoo.cli", "upscale", str(image), "-o", str(tmp_path / "o"),
                             "--model", str(model_dir), "--device", "cpu"], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")], result.stderr


# -- the app (space/app.py) through gradio_client ------------------------------------------------------

GENERIC_ERROR = "has not enabled verbose error reporting"


@pytest.fixture(scope="module")
def app_outcomes(corpus, tmp_path_factory):
    """Every uploadable corpus file through the Upscale tab's `/upscale` endpoint (Bicubic x4; SRGAN x4,
    a tiny model, for a few), each call with a timeout; then a normal request must still be answered.
    Yields (server_alive_and_answering, [(case, method, result paths | None, error text | None)])."""
    from gradio_client import handle_file
    from app_server import app_server, make_client, make_tiny_models

    _, cases = corpus
    tmp = tmp_path_factory.mktemp("app-robustness")
    with app_server(make_tiny_models(tmp / "models"), tmp / "server.log") as server:
        client = make_client(server.url, tmp / "downloads")
        if "/upscale" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]:
            pytest.skip("the app has no /upscale endpoint (space/tabs/upscale.py) yet")
        outcomes = []
        for case in (c for c in cases if c.is_file and c.in_app):
            methods = ["Bicubic x4", "SRGAN x4"] if "model" in case.tags or not case.ok else ["Bicubic x4"]
            for method in methods:
                job = client.submit(handle_file(str(case.source)), method, api_name="/upscale")
                try:
                    outcomes.append((case, method, job.result(timeout=APP_CALL_TIMEOUT_S), None))
                except TimeoutError:
                    outcomes.append((case, method, None, "TIMEOUT"))
                except Exception as err:  # noqa: BLE001 - judged by the tests below
                    outcomes.append((case, method, None, f"{type(err).__name__}: {err}"))
                assert server.alive(), f"the server died on {case.name}:\n{server.log_tail()}"
        sample = client.submit("7", 4, 0, api_name="/sample_digits").result(timeout=APP_CALL_TIMEOUT_S)
        yield server.alive() and Path(sample).is_file(), outcomes


def test_app_never_hangs_or_crashes_and_upscales_what_it_can(app_outcomes):
    healthy, outcomes = app_outcomes
    assert healthy, "the server did not answer a normal request after the corpus"
    assert len(outcomes) >= 25
    assert not [c.name for c, _, _, error in outcomes if error == "TIMEOUT"], "calls hung"
    for case, method, result, error in outcomes:
        if case.ok:
            assert error is None, f"{case.name} ({method}): {error}"
            before, after = result
            with Image.open(after) as img, Image.open(before) as ref:
                check_result(case, img, content=method == "Bicubic x4")  # EXIF, alpha and 16-bit kept
                assert ref.size == img.size
        else:
            assert result is None and error, f"{case.name} ({method}) gave a result"


def test_app_explains_why_a_file_cannot_be_upscaled(app_outcomes):
    _, outcomes = app_outcomes
    vague = [f"{case.name} ({method})" for case, method, _, error in outcomes
             if not case.ok and GENERIC_ERROR in (error or "")]
    assert not vague, f"no clear error message for: {vague}"
