"""Write the Style tab's example images (run once from the repo root: python space/examples/style_examples.py).

Content photos: 256x256 crops of scikit-image's bundled sample images (public domain / CC0, see
skimage.data). Style thumbnails: the bundled styles' images from ../shared/data/style/styles, shrunk to
160 pixels (sources and licences: ../shared/data/README.md and each style model's card).
"""

import sys
from pathlib import Path

from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent
STYLES_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "style" / "styles"
CONTENT = {  # name: (image, (top, left, size))
    "style_content_astronaut.jpg": (data.astronaut, (0, 100, 320)),
    "style_content_coffee.jpg": (data.coffee, (40, 160, 320)),
    "style_content_chelsea.jpg": (data.chelsea, (0, 80, 300)),
}
STYLES = ["mosaic", "candy", "starry_night", "udnie"]

for name, (load, (top, left, size)) in CONTENT.items():
    crop = Image.fromarray(load()[top:top + size, left:left + size]).resize((256, 256), Image.Resampling.LANCZOS)
    crop.save(HERE / name, quality=85, optimize=True)
    print(name, crop.size, (HERE / name).stat().st_size, "bytes")
for style in STYLES:
    image = Image.open(STYLES_DIR / f"{style}.jpg").convert("RGB")
    image.thumbnail((160, 160), Image.Resampling.LANCZOS)
    target = HERE / f"style_{style.replace('_', '-')}.jpg"
    image.save(target, quality=85, optimize=True)
    print(target.name, image.size, target.stat().st_size, "bytes")
