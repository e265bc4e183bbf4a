"""Write the Upscale tab's example images (run once from the repo root: python space/examples/make_examples.py).

Small crops of scikit-image's bundled sample images (public domain / CC0, see skimage.data),
saved as optimised PNGs beside this script.
"""

from pathlib import Path

from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent
CROPS = {  # name: (image, (top, left, height, width))
    "chelsea_96.png": (data.chelsea, (60, 150, 96, 96)),     # an eye and fur
    "astronaut_128.png": (data.astronaut, (40, 150, 128, 128)),  # a face
    "coffee_112.png": (data.coffee, (60, 200, 112, 112)),    # crema and the cup rim
}

for name, (load, (top, left, height, width)) in CROPS.items():
    crop = Image.fromarray(load()[top:top + height, left:left + width])
    crop.save(HERE / name, optimize=True)
    print(name, crop.size, (HERE / name).stat().st_size, "bytes")

# The Deblur tab's examples: two photos blurred with seeded camera-shake kernels (as in training),
# and two sharp ones for "blur and deblur".
import torch  # noqa: E402

from ganzoo import degrade, imaging  # noqa: E402

SHAKEN = {"chelsea_shake_192.png": (data.chelsea, (40, 120), 11, 192),
          "camera_shake_192.png": (data.camera, (60, 180), 5, 192)}
SHARP = {"coffee_160.png": (data.coffee, (60, 180), 160), "astronaut_160.png": (data.astronaut, (30, 150), 160)}
for name, (load, (top, left), seed, size) in SHAKEN.items():
    sharp = imaging.image_to_tensor(Image.fromarray(load()[top:top + size, left:left + size]))[0]
    kernel = degrade.random_trajectory_kernel(31, torch.Generator().manual_seed(seed), max_length=30,
                                              min_length_fraction=1.0)
    imaging.tensor_to_image(imaging.quantize(degrade.blur(sharp, kernel))).save(HERE / name, optimize=True)
    print(name, (HERE / name).stat().st_size, "bytes")
for name, (load, (top, left), size) in SHARP.items():
    Image.fromarray(load()[top:top + size, left:left + size]).save(HERE / name, optimize=True)
    print(name, (HERE / name).stat().st_size, "bytes")
