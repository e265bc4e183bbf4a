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
