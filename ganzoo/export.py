"""ONNX export of image-to-image models, and running them in ONNX Runtime.

The graph takes one float32 input `lr` [N,3,H,W] in [0,1] and returns `sr`
[N,3,sH,sW]; batch, height and width are dynamic. The TorchScript-based
exporter (`dynamo=False`) is used: the torch.export-based one needs
`onnxscript`, which is not a dependency, and SRResNet has no control flow
that would need it. Requires the `onnx` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ganzoo.inference import for_inference

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "export_onnx", "onnx_session", "run_onnx"]

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "lr", "sr"


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                example_size: int = 32) -> str:
    """Write `model` (eval mode, on the CPU, fp32) as ONNX to `path` with dynamic batch, height and width.

    What is exported is `inference.for_inference(model, resize_conv_tail=False)`: the same function with batch
    norms folded and the sub-pixel SRResNet's tail on the half-size grid (that model in ONNX Runtime: 1.53x the
    PyTorch baseline instead of 1.01x; docs/performance.md). The resize-convolution tail rewrite is left out:
    it does not trace with dynamic sizes.
    The caller's model is not changed (a CPU copy is exported). Returns the path written.
    """
    model = for_inference(copy.deepcopy(model).float().cpu(), resize_conv_tail=False)
    example = torch.rand(1, 3, example_size, example_size, generator=torch.Generator().manual_seed(0))
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation on every call.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(
                model, (example,), path, dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                              OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}})
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None,
                 optimize: bool = True) -> Any:
    """An `onnxruntime.InferenceSession` with all graph optimisations (CPU provider unless told otherwise).

    `threads` sets the intra-op thread count (default: ONNX Runtime's choice).
    """
    try:
        import onnxruntime as ort
    except ImportError as err:  # an optional dependency
        raise ImportError("ONNX Runtime is not installed: pip install 'ganzoo[onnx]'") from err
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(os.fspath(path), sess_options=options,
                                providers=providers or ["CPUExecutionProvider"])


def run_onnx(session: Any, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Run an exported model on [N,3,H,W]; returns a float32 CPU tensor."""
    array = x.detach().float().cpu().contiguous().numpy() if isinstance(x, torch.Tensor) else \
        np.ascontiguousarray(x, dtype=np.float32)
    (output,) = session.run([OUTPUT_NAME], {INPUT_NAME: array})
    return torch.from_numpy(output)
