"""End-to-end latency of the app's Upscale tab through gradio_client, with the bundled models.

    python benchmarks/measure_latency.py --size 256 --repeats 5 [--method "SRGAN x4"]

Starts `space/app.py` (with the bundled models) on a free loopback port, uploads a size x size photo crop
(skimage's astronaut) and times each `/upscale` call from request to the decoded
result, after one warm-up call (which also loads the model).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the app launcher the app tests use
from app_server import app_server  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--method", default="SRGAN x4")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, app_server({}, Path(tmp) / "server.log") as server:
        photo = Path(tmp) / "input.png"
        Image.fromarray(np.ascontiguousarray(data.astronaut()[:args.size, 100:100 + args.size])).save(photo)
        client = Client(server.url, verbose=False, download_files=tmp)
        client.predict(handle_file(str(photo)), args.method, api_name="/upscale")  # warm-up, loads the model
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            _, after = client.predict(handle_file(str(photo)), args.method, api_name="/upscale")
            Image.open(after).load()
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"method": args.method, "input": f"{args.size}x{args.size}", "repeats": args.repeats,
                      "median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
                      "max_s": round(max(seconds), 3), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
