"""Blur synthesis for deblurring: random camera-shake kernels, recorded kernels, blur and noise.

The trajectory kernels follow the method of Boracchi & Foi (2012) as used by
DeblurGAN (Kupyn et al. 2018, Algorithm 1): a camera path whose velocity keeps
its direction (inertia), is jittered by Gaussian shake, jumps on rare impulsive
shakes and is pulled back towards the start (deterministic drift), rasterised
with bilinear splatting.

Two samplers of the same paths: `random_trajectory` (one path, the reference, used by the seeded
evaluation sets) and `random_trajectories` (a batch in one set of tensor operations, used by
`ShakeBlur` for training). They step the same recurrence, so given the same random numbers they
give the same path; they draw those numbers in a different order, so a seed gives different
(equally distributed) kernels in each.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

__all__ = [
    "BlurSynthesizer",
    "ShakeBlur",
    "add_noise",
    "benchmark_kernels",
    "blur",
    "blur_valid",
    "center_kernel",
    "load_kernels",
    "random_trajectories",
    "random_trajectory",
    "random_trajectory_kernel",
    "rasterize_trajectories",
    "rasterize_trajectory",
    "shake_kernel",
    "sized_shake_kernel",
    "vary_speed",
]

PAD_MODES = ("reflect", "replicate", "circular")


def _uniform(rng: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> float:
    device = rng.device if rng is not None else "cpu"
    return low + (high - low) * float(torch.rand((), generator=rng, device=device))


def random_trajectory(
    length: float,
    steps: int = 2000,
    rng: torch.Generator | None = None,
    impulse_prob: float = 0.2,
    shake: float = 10.0,
    drift: float = 0.7,
    anxiety: float = 0.005,
) -> torch.Tensor:
    """A random camera path of `steps` points [steps, 2] (x, y), total arc length `length`.

    Per trajectory the strengths are drawn uniformly from [0, given value]:
    `impulse_prob` (chance per step, times `anxiety`, of an abrupt turn),
    `shake` (Gaussian jitter of the velocity) and `drift` (pull back to the start).
    """
    device = rng.device if rng is not None else "cpu"
    impulse_p = impulse_prob * _uniform(rng)
    shake_s = shake * _uniform(rng)
    drift_s = drift * _uniform(rng)
    angle = _uniform(rng, 0.0, 2 * math.pi)
    # All random numbers are drawn up front so the loop runs on plain floats.
    jitter = torch.randn(steps, 2, generator=rng, device=device).double().cpu().tolist()
    coins = torch.rand(steps, generator=rng, device=device).double().cpu().tolist()
    turns = torch.rand(steps, generator=rng, device=device).double().cpu().tolist()

    step = length / max(steps - 1, 1)
    v = complex(math.cos(angle), math.sin(angle)) * step
    x = 0j
    path = [x]
    for t in range(steps - 1):
        dv = 0j
        if coins[t] < impulse_p * anxiety:
            # Impulsive shake: the camera jerks back, roughly reversing its motion.
            dv = 2 * v * complex(math.cos(math.pi + turns[t] - 0.5), math.sin(math.pi + turns[t] - 0.5))
        gauss = complex(jitter[t][0], jitter[t][1])
        dv += anxiety * (shake_s * gauss - drift_s * x) * step
        v += dv
        speed = abs(v)
        # Constant speed keeps the arc length fixed; only the direction evolves.
        v = v / speed * step if speed > 0 else complex(math.cos(angle), math.sin(angle)) * step
        x += v
        path.append(x)
    return torch.tensor([[p.real, p.imag] for p in path], dtype=torch.float64)


def vary_speed(points: torch.Tensor, variation: float, rng: torch.Generator | None = None) -> torch.Tensor:
    """The same path [M, 2] travelled at a varying speed, resampled at M equal time steps.

    `random_trajectory` moves at constant speed, so its kernels hold their mass evenly along the path. A real
    hand slows and speeds up: recorded camera shake (Levin et al. 2009) holds bright knots where the camera
    lingered and faint strokes where it moved fast. Here the log-speed is smooth Gaussian noise (correlated over
    a tenth of the path) of std `variation`; 0 returns `points` unchanged and draws no random numbers.
    """
    if variation < 0:
        raise ValueError(f"speed variation must be at least 0, got {variation}")
    if variation == 0 or len(points) < 2:
        return points
    count = len(points)
    noise = torch.randn(count, generator=rng, device=rng.device if rng is not None else "cpu").double().cpu()
    log_speed = ndimage.gaussian_filter1d(noise.numpy(), sigma=count / 10, mode="reflect")
    log_speed = variation * (log_speed - log_speed.mean()) / max(float(log_speed.std()), 1e-12)
    # Equal arc length per point, so the time spent between points is inversely proportional to the speed.
    elapsed = np.concatenate([[0.0], np.cumsum(np.exp(-log_speed[:-1]))])
    times = np.linspace(0.0, elapsed[-1], count)
    path = points.double().numpy()
    resampled = np.stack([np.interp(times, elapsed, path[:, axis]) for axis in range(2)], axis=1)
    return torch.from_numpy(resampled).to(points.dtype)


def rasterize_trajectory(points: torch.Tensor, size: int) -> torch.Tensor:
    """Splat points [M, 2] (x, y) bilinearly onto a [size, size] grid, centred and summing to 1.

    The points are shifted so their mean lies on the grid centre; bilinear
    splatting preserves the mean, so the kernel's centre of mass is exactly
    the centre. A path too wide for the grid is scaled down to fit.
    """
    pts = points.double() - points.double().mean(0)
    radius = (size - 1) / 2 - 1.0  # keep the +1 bilinear neighbour on the grid
    extent = float(pts.abs().max())
    if extent > radius:
        pts = pts * (radius / extent)
    pts = pts + (size - 1) / 2
    base = pts.floor()
    frac = pts - base
    ix, iy = base[:, 0].long(), base[:, 1].long()
    fx, fy = frac[:, 0], frac[:, 1]
    kernel = torch.zeros(size * size, dtype=torch.float64)
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                      (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        kernel.index_add_(0, (iy + dy) * size + (ix + dx), w)
    kernel = kernel.view(size, size)
    return (kernel / kernel.sum()).float()


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def device_generator(rng: torch.Generator, device: torch.device | str) -> torch.Generator:
    """`rng` if it lives on `device`, else a generator there seeded by one draw from `rng`
    (so the step's randomness is still a function of `rng`, and big draws stay on the device)."""
    device = torch.device(device)
    if _same_device(rng.device, device):
        return rng
    seed = int(torch.randint(2**62, (), generator=rng, device=rng.device))
    return torch.Generator(device=device).manual_seed(seed)


def _steer(u0: torch.Tensor, turn: torch.Tensor, push: torch.Tensor, pull: torch.Tensor) -> torch.Tensor:
    """Unit velocities [T, N] of the trajectory recurrence: u' = sgn(u * turn + push - y), y += pull * u'.

    The one sequential part: each step depends on the last, so this runs T - 1 steps of four
    operations on [N] tensors, for all N paths at once (a plain add where no path jerks, most steps).
    `_steer_numpy` is the same loop on the CPU.
    """
    velocities = torch.empty(turn.shape[0] + 1, *u0.shape, dtype=u0.dtype, device=u0.device)
    velocities[0] = u0
    rows = velocities.unbind(0)
    jerks = (turn != 1).any(1).tolist()
    pull = pull.to(u0.dtype)
    y, z = torch.zeros_like(u0), torch.empty_like(u0)
    for u, new, p, m, jerk in zip(rows, rows[1:], push.unbind(0), turn.unbind(0), jerks):
        torch.sub(p, y, out=z)
        if jerk:
            z.addcmul_(u, m)
        else:
            z.add_(u)
        torch.sgn(z, out=new)
        y.addcmul_(new, pull)
    return velocities


def _steer_numpy(u0: np.ndarray, turns: list[np.ndarray | None], push: np.ndarray, pull: np.ndarray
                 ) -> np.ndarray:
    """`_steer` in numpy complex128, path-major: velocities [N, T] from `push` [N, T-1]; `turns` [T-1] holds a
    step's factors [N] where some path jerks, else None.

    Torch dispatch costs 5-10 us an operation and numpy's about 1 us; on [N] arrays that overhead is the
    loop's whole cost, so the CPU steps in numpy (positional `out`s and bound names save a little more).
    Columns of path-major arrays cost less than transposing the draws in and the velocities out.
    """
    velocities = np.empty((len(u0), push.shape[1] + 1), dtype=np.complex128)
    velocities[:, 0] = u0
    columns = list(velocities.T)
    y, z, term = np.zeros_like(u0), np.empty_like(u0), np.empty_like(u0)
    pull = pull.astype(np.complex128)  # complex x real would cast inside every multiply
    subtract, add, multiply, sign = np.subtract, np.add, np.multiply, np.sign
    for u, new, p, m in zip(columns, columns[1:], push.T, turns):
        subtract(p, y, z)
        if m is None:
            add(z, u, z)
        else:
            multiply(u, m, term)
            add(z, term, z)
        sign(z, new)
        multiply(new, pull, term)
        add(y, term, y)
    return velocities


def _jerk_factor(turns: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """An impulsive shake multiplies the velocity by 1 + 2 e^{i(pi + turn - 1/2)}: the camera jerks back."""
    if isinstance(turns, torch.Tensor):
        return 1 + torch.polar(2 * torch.ones_like(turns), math.pi + turns - 0.5)
    angle = math.pi + turns - 0.5
    return (1 + 2 * np.cos(angle)) + 1j * (2 * np.sin(angle))


def _positions_numpy(step: np.ndarray, params: np.ndarray, jitter: np.ndarray, coins: np.ndarray,
                     turns: np.ndarray, impulse_prob: float, shake: float, drift: float, anxiety: float
                     ) -> np.ndarray:
    """Positions [N, T] complex128 from draws [N, ...] (any float dtype): `trajectories_from_draws` on the CPU."""
    n, steps = len(params), jitter.shape[1] + 1
    params = params.astype(np.float64)
    impulse_p, shake_s, drift_s = impulse_prob * params[:, 0], shake * params[:, 1], drift * params[:, 2]
    push = np.multiply(jitter, (anxiety * shake_s)[:, None, None], dtype=np.float64).view(np.complex128)[..., 0]
    jerked = np.nonzero(coins < (impulse_p * anxiety)[:, None])
    factors = _jerk_factor(turns[jerked].astype(np.float64))
    rows: list[np.ndarray | None] = [None] * (steps - 1)
    for path, t, factor in zip(*jerked, factors):
        if rows[t] is None:
            rows[t] = np.ones(n, dtype=np.complex128)
        rows[t][path] = factor
    angle = 2 * math.pi * params[:, 3]
    positions = _steer_numpy(np.cos(angle) + 1j * np.sin(angle), rows, push, anxiety * drift_s * step)
    # The velocities' buffer becomes the positions: x_0 = 0, x_t = sum of step * u.
    positions[:, 0] = 0
    positions[:, 1:] *= step[:, None]
    return np.cumsum(positions, 1, out=positions)


def _positions_torch(step: torch.Tensor, params: torch.Tensor, jitter: torch.Tensor, coins: torch.Tensor,
                     turns: torch.Tensor, impulse_prob: float, shake: float, drift: float, anxiety: float,
                     loop_device: torch.device) -> torch.Tensor:
    """Positions [T, N] complex128 on the draws' device, the loop on `loop_device`."""
    device = params.device
    n = params.shape[0]
    params, jitter, coins, turns = params.double(), jitter.double(), coins.double(), turns.double()
    impulse_p, shake_s, drift_s = impulse_prob * params[:, 0], shake * params[:, 1], drift * params[:, 2]
    ones = torch.ones_like(turns)
    turn = torch.where(coins < (impulse_p * anxiety)[:, None], _jerk_factor(turns), torch.complex(ones, 0 * ones))
    push = (anxiety * shake_s)[:, None] * torch.complex(jitter[..., 0], jitter[..., 1])
    u0 = torch.polar(torch.ones_like(step), 2 * math.pi * params[:, 3])
    velocities = _steer(u0.to(loop_device), turn.T.to(loop_device), push.T.to(loop_device),
                        (anxiety * drift_s * step).to(loop_device)).to(device)
    return torch.cat([torch.zeros(1, n, dtype=velocities.dtype, device=device),
                      torch.cumsum(velocities[1:] * step, 0)])


def trajectories_from_draws(lengths: torch.Tensor, params: torch.Tensor, jitter: torch.Tensor,
                            coins: torch.Tensor, turns: torch.Tensor, impulse_prob: float = 0.2,
                            shake: float = 10.0, drift: float = 0.7, anxiety: float = 0.005,
                            loop_device: torch.device | str | None = "cpu") -> torch.Tensor:
    """Paths [N, T, 2] (x, y) float64 from their random numbers: `params` [N, 4] uniforms (impulse
    chance, shake, drift, start angle), `jitter` [N, T-1, 2] normal, `coins`, `turns` [N, T-1] uniform.

    `random_trajectory`'s loop for N paths at once: with speed fixed at `length / (T - 1)` per step,
    the state is the unit velocity u, and the drift's pull on the position x is carried as
    y = anxiety * drift * x. `loop_device` runs the sequential part (None: where the draws are; the
    default CPU, since 8,000 dependent tiny operations are launch-bound on a GPU). On the CPU it runs in
    numpy (`_steer_numpy`), elsewhere in torch (`_steer`); the two agree to rounding (well under 1e-9 px).
    """
    device = params.device
    steps = jitter.shape[1] + 1
    step = lengths.to(device, torch.float64) / max(steps - 1, 1)
    strengths = (impulse_prob, shake, drift, anxiety)
    loop_device = device if loop_device is None else torch.device(loop_device)
    if loop_device.type == "cpu":
        draws = (t.detach().cpu().numpy() for t in (step, params, jitter, coins, turns))
        return torch.view_as_real(torch.from_numpy(_positions_numpy(*draws, *strengths))).to(device)
    positions = _positions_torch(step, params, jitter, coins, turns, *strengths, loop_device)
    return torch.view_as_real(positions).transpose(0, 1)


def random_trajectories(lengths: torch.Tensor, steps: int = 2000, rng: torch.Generator | None = None,
                        loop_device: torch.device | str | None = "cpu", **strengths: float) -> torch.Tensor:
    """Random camera paths [N, steps, 2] float64 of arc lengths `lengths` [N], on `rng`'s device: the law of
    `random_trajectory` (same recurrence and strengths, keyword `strengths` as there), its random numbers
    drawn for the whole batch at once."""
    device = rng.device if rng is not None else torch.device("cpu")
    n = lengths.numel()
    params = torch.rand(n, 4, generator=rng, device=device)
    jitter = torch.randn(n, steps - 1, 2, generator=rng, device=device)
    coins, turns = torch.rand(2, n, steps - 1, generator=rng, device=device)
    return trajectories_from_draws(lengths.reshape(-1), params, jitter, coins, turns, loop_device=loop_device,
                                   **strengths)


def _splat(pts: torch.Tensor, grid: int) -> torch.Tensor:
    """Bilinear splats of points [N, T, 2] (grid coordinates) onto N [grid, grid] grids, unnormalised float64."""
    base = pts.floor()
    fx, fy = (pts - base).unbind(-1)
    ix, iy = base.long().unbind(-1)
    first = (torch.arange(len(pts), device=pts.device) * grid * grid)[:, None]
    index = torch.cat([first + (iy + dy) * grid + ix + dx for dy in (0, 1) for dx in (0, 1)], 1)
    weight = torch.cat([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    kernels = torch.zeros(len(pts) * grid * grid, dtype=torch.float64, device=pts.device)
    return kernels.index_add_(0, index.reshape(-1), weight.reshape(-1)).view(-1, grid, grid)


def _splat_numpy(pts: np.ndarray, grid: int, out: np.ndarray) -> None:
    """`_splat` in numpy, normalised into `out` [N, grid, grid] float32: each kernel's sums in `index_add_`'s
    order (a cell belongs to one path, and `bincount` adds corner by corner, each in time order)."""
    n, steps = pts.shape[:2]
    base = np.floor(pts)
    fx, fy = np.subtract(pts, base, out=pts).transpose(2, 0, 1)
    gx, gy = 1 - fx, 1 - fy
    cell = base[..., 1] * grid
    cell += base[..., 0]
    cell += (np.arange(n) * grid * grid)[:, None]
    index = np.empty((4, n, steps), dtype=np.intp)
    weight = np.empty((4, n, steps))
    index[0] = cell
    for k, (offset, wx, wy) in enumerate([(0, gx, gy), (1, fx, gy), (grid, gx, fy), (grid + 1, fx, fy)]):
        np.add(index[0], offset, out=index[k])
        np.multiply(wx, wy, out=weight[k])
    kernels = np.bincount(index.reshape(-1), weight.reshape(-1), minlength=n * grid * grid).reshape(n, grid, grid)
    np.divide(kernels, kernels.sum((1, 2), keepdims=True), out=out, casting="same_kind")


def _rasterize_numpy(points: np.ndarray, grid: int, fit: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                     chunk: int = 8) -> np.ndarray:
    """`rasterize_trajectories` on the CPU: `fit` maps the paths' extents [N] to their scales and centres.

    Chunks of `chunk` paths keep the temporaries in cache and small enough for malloc to reuse: a batch's
    worth of fresh arrays costs more in page faults than in arithmetic."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    mean = points.view(np.complex128).mean(1).view(np.float64)[:, None, :]
    extent = np.empty(len(points))
    for lo in range(0, len(points), chunk):
        centred = points[lo:lo + chunk] - mean[lo:lo + chunk]
        # max(max, -min) is max |x| without an |x| array.
        np.maximum(centred.max((1, 2)), -centred.min((1, 2)), out=extent[lo:lo + chunk])
    scale, centre = (v.numpy()[:, None, None] for v in fit(torch.from_numpy(extent)))
    kernels = np.empty((len(points), grid, grid), dtype=np.float32)
    for lo in range(0, len(points), chunk):
        part = slice(lo, lo + chunk)
        pts = np.subtract(points[part], mean[part])
        pts *= scale[part]
        pts += centre[part]
        _splat_numpy(pts, grid, kernels[part])
    return kernels


def _rasterize_torch(points: torch.Tensor, grid: int,
                     fit: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """`rasterize_trajectories` on the points' device (a GPU's), in torch."""
    pts = points.double() - points.double().mean(1, keepdim=True)
    scale, centre = fit(pts.abs().amax((1, 2)))
    kernels = _splat(pts * scale[:, None, None] + centre[:, None, None], grid)
    return (kernels / kernels.sum((1, 2), keepdim=True)).float()


def _fit(extent: torch.Tensor, grid: int, stretch_to: torch.Tensor | None, size: int | None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and grid centres [N] of centred paths of half-widths `extent` [N] (see `rasterize_trajectories`)."""
    sizes = (2 * extent.ceil() + 3).clamp(3, grid) if size is None else torch.full_like(extent, size)
    scale = (((sizes - 1) / 2 - 1) / extent.clamp_min(1e-9)).clamp(max=1.0)
    if stretch_to is not None:
        stretch_to = stretch_to.to(extent)
        scale = torch.where(stretch_to > 0, ((stretch_to - 1) / 2 - 1) / extent.clamp_min(1e-9), scale)
    # The centre of a size-s grid padded into the middle of the common one (the same for odd s).
    return scale, torch.div(grid - sizes, 2, rounding_mode="floor") + (sizes - 1) / 2


def rasterize_trajectories(points: torch.Tensor, grid: int, stretch_to: torch.Tensor | None = None,
                           size: int | None = None) -> torch.Tensor:
    """Kernels [N, grid, grid] float32 from paths [N, T, 2] in one scatter: each as `shake_kernel` draws it
    (on the smallest odd grid that holds it, at most `grid`), as `random_trajectory_kernel` does on a fixed
    `size` grid if given, or, where `stretch_to` [N] is non-zero, stretched to span a grid of that odd size
    as `sized_shake_kernel` does; zero-padded about the centre as `center_kernel` pads. On a CPU in numpy
    (`_rasterize_numpy`), the same kernels to float rounding."""
    if grid < 3 or grid % 2 == 0 or size is not None and not 3 <= size <= grid:
        raise ValueError(f"grid must be odd and at least 3, and size in [3, grid]; got {grid}, {size}")
    fit = partial(_fit, grid=grid, stretch_to=stretch_to, size=size)
    if points.device.type == "cpu":
        return torch.from_numpy(_rasterize_numpy(points.detach().numpy(), grid, fit))
    return _rasterize_torch(points, grid, fit)


def random_trajectory_kernel(
    size: int = 31,
    rng: torch.Generator | None = None,
    max_length: float = 40.0,
    min_length_fraction: float = 0.1,
    steps: int = 2000,
) -> torch.Tensor:
    """A camera-shake blur kernel [size, size] float32: non-negative, centred, sum 1.

    The path length is drawn uniformly from [min_length_fraction, 1] * max_length
    (a random exposure); paths wider than the kernel are scaled to fit.
    """
    if size < 3:
        raise ValueError(f"kernel size must be at least 3, got {size}")
    length = max_length * _uniform(rng, min_length_fraction, 1.0)
    return rasterize_trajectory(random_trajectory(length, steps, rng), size)


def shake_kernel(length: float, rng: torch.Generator | None = None, max_size: int = 75,
                 speed_variation: float = 0.0) -> torch.Tensor:
    """A camera-shake kernel whose path has arc length `length` px, on the smallest odd grid that holds it
    (at most `max_size`; a wider path is scaled down to fit); `speed_variation` as `vary_speed`."""
    points = vary_speed(random_trajectory(length, rng=rng), speed_variation, rng)
    reach = float((points - points.mean(0)).abs().max())
    size = min(2 * math.ceil(reach) + 3, max_size - 1 + max_size % 2)
    return rasterize_trajectory(points, max(size, 3))


def sized_shake_kernel(size: int, rng: torch.Generator | None = None, speed_variation: float = 0.0) -> torch.Tensor:
    """A camera-shake kernel that spans a `size` x `size` grid (odd `size`): a path 1-2x `size` long,
    scaled so that its widest excursion reaches the grid's edge; `speed_variation` as `vary_speed`."""
    if size < 5 or size % 2 == 0:
        raise ValueError(f"size must be odd and at least 5, got {size}")
    points = vary_speed(random_trajectory(size * _uniform(rng, 1.0, 2.0), rng=rng), speed_variation, rng)
    points = points - points.mean(0)
    points = points * (((size - 1) / 2 - 1) / float(points.abs().max().clamp_min(1e-9)))
    return rasterize_trajectory(points, size)


def _natural_key(path: Path) -> list:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name)]


def _normalised(array: np.ndarray, source: str) -> torch.Tensor:
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{source}: a kernel must be a 2-D array, got shape {array.shape}")
    kernel = torch.from_numpy(np.asarray(array, dtype=np.float64))
    if not torch.isfinite(kernel).all() or (kernel < 0).any() or kernel.sum() <= 0:
        raise ValueError(f"{source}: a kernel must be finite, non-negative and not all zero")
    return (kernel / kernel.sum()).float()


def _read_npz(path: Path) -> dict[str, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in sorted(data.files, key=lambda k: _natural_key(Path(k)))}
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: cannot read kernels ({e})") from e
    if not arrays:
        raise ValueError(f"{path}: no kernels in the archive")
    return {f"{path.stem}/{key}": _normalised(a, f"{path}[{key}]") for key, a in arrays.items()}


def _read_png(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("F") if img.mode != "L" else img, dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path}: cannot read kernel image ({e})") from e
    return _normalised(array, str(path))


def _same_kernel(a: torch.Tensor, b: torch.Tensor) -> bool:
    # A PNG holds the kernel quantised to 8 bits of its peak.
    return a.shape == b.shape and bool(((a / a.max() - b / b.max()).abs().max()) <= 1.5 / 255)


def load_kernels(folder: str | os.PathLike, skip_png_copies: bool = True) -> list[torch.Tensor]:
    """Recorded blur kernels from every .npz (all arrays) and .png in `folder` (or from one such file),
    each float32 summing to 1.

    Archives come first, then images, each in natural name order. With
    `skip_png_copies` a PNG that is an 8-bit rendering of a kernel already read
    from an archive (e.g. `levin09_k3.png` of `levin09_kernels_from_mat.npz`)
    is not added twice. Any unreadable or invalid file raises ValueError.
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix.lower() == ".npz":
        return list(_read_npz(folder).values())
    if folder.is_file() and folder.suffix.lower() == ".png":
        return [_read_png(folder)]
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of blur kernels (nor a .npz or .png kernel file)")
    kernels: list[torch.Tensor] = []
    for path in sorted(folder.glob("*.npz"), key=_natural_key):
        kernels.extend(_read_npz(path).values())
    from_archives = list(kernels)
    for path in sorted(folder.glob("*.png"), key=_natural_key):
        kernel = _read_png(path)
        if skip_png_copies and any(_same_kernel(kernel, k) for k in from_archives):
            continue
        kernels.append(kernel)
    if not kernels:
        raise ValueError(f"{folder}: no .npz or .png kernels found")
    return kernels


def benchmark_kernels(path: str | os.PathLike | None, trajectories: int | None,
                      seed: int) -> list[torch.Tensor] | None:
    """Kernels from a file or folder, or `trajectories` random camera-shake kernels drawn from `seed`
    (what `ganzoo evaluate deblur --kernels/--trajectories/--seed` blurs with); None for neither."""
    if path is not None and trajectories is not None:
        raise ValueError("give --kernels or --trajectories, not both")
    if path is not None:
        return load_kernels(path)
    if trajectories is not None:
        rng = torch.Generator().manual_seed(seed)
        return [random_trajectory_kernel(31, rng) for _ in range(trajectories)]
    return None


def center_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad or crop a [k, k'] kernel to [size, size] about its centre, renormalised to sum 1."""
    out = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    h, w = kernel.shape
    src_y, dst_y = max((h - size) // 2, 0), max((size - h) // 2, 0)
    src_x, dst_x = max((w - size) // 2, 0), max((size - w) // 2, 0)
    ch, cw = min(h, size), min(w, size)
    out[dst_y:dst_y + ch, dst_x:dst_x + cw] = kernel[src_y:src_y + ch, src_x:src_x + cw]
    total = out.sum()
    if total <= 0:
        raise ValueError(f"cropping a {h}x{w} kernel to {size}x{size} leaves nothing")
    return out / total


def blur(images: torch.Tensor, kernels: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Convolve images [N,C,H,W] with per-image kernels [N,k,k] (or one [k,k]); same size out.

    True convolution (the kernel is flipped), as scipy.signal.convolve2d(mode='same')
    and the Levin et al. benchmark; one grouped conv2d for the whole batch.
    """
    if padding not in PAD_MODES:
        raise ValueError(f"padding must be one of {PAD_MODES}, got {padding!r}")
    if images.dim() != 4:
        raise ValueError(f"images must be [N,C,H,W], got {list(images.shape)}")
    n, c, h, w = images.shape
    if kernels.dim() == 2:
        kernels = kernels.expand(n, -1, -1)
    if kernels.dim() != 3 or kernels.shape[0] != n:
        raise ValueError(f"kernels must be [k,k] or [{n},k,k], got {list(kernels.shape)}")
    kh, kw = kernels.shape[-2:]
    if padding == "reflect" and (kh // 2 >= h or kw // 2 >= w):
        raise ValueError(f"a {kh}x{kw} kernel is too large for 'reflect' padding of {h}x{w} images")
    weight = kernels.to(images).flip(-2, -1).repeat_interleave(c, dim=0).unsqueeze(1)
    # Left/top pads of k//2 and right/bottom of (k-1)//2 match scipy's 'same' for even k too.
    padded = F.pad(images.reshape(1, n * c, h, w), (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2),
                   mode=padding)
    return F.conv2d(padded, weight, groups=n * c).view(n, c, h, w)


def add_noise(images: torch.Tensor, sigma: float | torch.Tensor, rng: torch.Generator | None = None
              ) -> torch.Tensor:
    """Add Gaussian noise of std `sigma` (a float or one per image [N]) and clamp to [0, 1].

    The noise is drawn on the generator's device, so a seed gives the same noise on CPU and GPU.
    """
    device = rng.device if rng is not None else "cpu"
    noise = torch.randn(images.shape, generator=rng, device=device, dtype=torch.float32)
    sigma = torch.as_tensor(sigma, dtype=images.dtype, device=images.device)
    if sigma.dim() == 1:
        sigma = sigma.view(-1, *([1] * (images.dim() - 1)))
    return (images + sigma * noise.to(images)).clamp(0.0, 1.0)


class BlurSynthesizer:
    """Make (blurred, kernel) pairs from sharp images: trajectory or recorded kernels, blur, noise; a batch at
    once (since issue 29: a seed gives other pairs than the per-sample version did, from the same law)."""

    def __init__(
        self,
        kernels: list[torch.Tensor] | None = None,
        recorded_fraction: float = 0.5,
        kernel_size: int = 31,
        noise_sigma: tuple[float, float] = (0.0, 0.01),
        circular_fraction: float = 0.0,
    ) -> None:
        if not 0.0 <= recorded_fraction <= 1.0:
            raise ValueError(f"recorded_fraction must lie in [0, 1], got {recorded_fraction}")
        if not 0.0 <= circular_fraction <= 1.0:
            raise ValueError(f"circular_fraction must lie in [0, 1], got {circular_fraction}")
        if recorded_fraction > 0 and kernels is not None and len(kernels) == 0:
            raise ValueError("recorded_fraction > 0 needs at least one recorded kernel")
        low, high = noise_sigma
        if not 0.0 <= low <= high:
            raise ValueError(f"noise_sigma must be (low, high) with 0 <= low <= high, got {noise_sigma}")
        self.recorded = list(kernels or [])
        self.recorded_fraction = recorded_fraction if self.recorded else 0.0
        largest = max([kernel_size, *(max(k.shape) for k in self.recorded)])
        # An odd common size keeps every kernel's centre on a pixel.
        self.size = largest + 1 - largest % 2
        self.kernel_size = kernel_size
        self.noise_sigma = (float(low), float(high))
        # Synthetic benchmarks (Levin et al. 2009 among them) blur with circular convolution, so their
        # borders hold the opposite edge's content; real photos behave like the reflect padding.
        self.circular_fraction = float(circular_fraction)
        self._recorded = [center_kernel(k.float(), self.size) for k in self.recorded]

    def sample_kernels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """`n` kernels [n, size, size] on `rng`'s device, drawn at once: a recorded one with probability
        recorded_fraction, else a trajectory kernel (the law of `random_trajectory_kernel`, other draws)."""
        device = rng.device
        pick, length = torch.rand(2, n, generator=rng, device=device, dtype=torch.float64)
        paths = random_trajectories(40.0 * (0.1 + 0.9 * length), rng=rng)
        kernels = rasterize_trajectories(paths, self.size, size=self.kernel_size)
        if self.recorded_fraction > 0:
            index = torch.randint(len(self._recorded), (n,), generator=rng, device=device)
            recorded = torch.stack(self._recorded).to(device)[index]
            kernels = torch.where((pick < self.recorded_fraction).view(-1, 1, 1), recorded, kernels)
        return kernels

    def __call__(self, sharp: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Blur and noise a batch [N,C,H,W]; returns (blurred [N,C,H,W], kernels [N,size,size]), on the batch's
        device (drawn there from a generator seeded by `rng` when `rng` lives elsewhere)."""
        rng = device_generator(rng, sharp.device)
        kernels = self.sample_kernels(sharp.shape[0], rng)
        low, high = self.noise_sigma
        sigma, circular = torch.rand(2, sharp.shape[0], generator=rng, device=rng.device)
        blurred = blur(sharp, kernels)
        circular = (circular < self.circular_fraction).nonzero()[:, 0]
        if len(circular):
            blurred[circular] = blur(sharp[circular], kernels[circular], padding="circular")
        return add_noise(blurred, low + (high - low) * sigma, rng), kernels


def _fft_size(n: int) -> int:
    """The smallest m >= n with no prime factor above 5."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def blur_valid(regions: torch.Tensor, kernel: torch.Tensor, size: int) -> torch.Tensor:
    """The central `size` x `size` of regions [N,C,H,W] convolved with `kernel` [k,k] (or one per region,
    [N,k,k]), every output pixel computed from real image content (H, W >= size + k - 1): no padding rule
    reaches the crop.

    Circular convolution by FFT, exact on that central crop and fast for kernels up to 75 px: one rfft2
    over the batch on a GPU (cache-sized chunks of it on a CPU), kernels zero-padded to the FFT size.
    """
    kh, kw = kernel.shape[-2:]
    h, w = regions.shape[-2:]
    if h < size + kh - 1 or w < size + kw - 1:
        raise ValueError(f"a {size}px crop blurred by a {kh}x{kw} kernel needs regions of at least "
                         f"{size + kh - 1}x{size + kw - 1}, got {h}x{w}")
    if regions.dim() != 4 or kernel.dim() == 3 and kernel.shape[0] != regions.shape[0]:
        raise ValueError(f"need regions [N,C,H,W] and a kernel [k,k] or [N,k,k], got {list(regions.shape)} and "
                         f"{list(kernel.shape)}")
    # Any FFT size from H, W up keeps the central crop exact; sizes with factors 2, 3, 5 only are fast.
    fh, fw = _fft_size(h), _fft_size(w)
    padded = torch.zeros(*kernel.shape[:-2], fh, fw, dtype=regions.dtype, device=regions.device)
    padded[..., :kh, :kw] = kernel.to(regions)
    # Move the kernel's centre to the origin so the output lines up with `blur`'s (scipy's "same").
    padded = torch.roll(padded, (-((kh - 1) // 2), -((kw - 1) // 2)), dims=(-2, -1))
    # One kernel for all channels of its region.
    kernels = padded[:, None] if kernel.dim() == 3 else padded.expand(len(regions), 1, fh, fw)
    # On a GPU the whole batch is one rfft2; on a CPU, chunks of ~1M pixels stay in cache and run 2-3x faster.
    chunk = len(regions) if regions.device.type != "cpu" else max(1, 2**20 // max(regions[0].numel(), 1))
    top, left = (h - size) // 2, (w - size) // 2
    parts = zip(regions.split(chunk), kernels.split(chunk))
    return torch.cat([torch.fft.irfft2(torch.fft.rfft2(part, s=(fh, fw)) * torch.fft.rfft2(k), s=(fh, fw))
                      [..., top:top + size, left:left + size] for part, k in parts])


class ShakeBlur:
    """Training pairs for blur never seen: random camera-shake kernels of path length drawn uniformly from
    `lengths` px (at most `max_kernel` px wide) or, with chance `sized_fraction`, paths stretched to span a
    grid of odd size uniform in [5, max_kernel] (a curled path of 100 px often spans only 20-40 px, so
    large kernels need this), sensor noise of std up to `max_noise`, and with chance `saturation`
    highlights brighter than the sensor records, clipped after the blur; 8-bit output.

    Takes regions `max_kernel - 1` px larger than the crop, so even the largest blur sees real content.
    A batch is made in one set of tensor operations (`kernels`, one FFT blur, noise drawn on the device),
    its random numbers drawn batch-wise: a seed gives other pairs than the per-kernel version of this class
    did (before issue 29), from the same distribution.
    """

    def __init__(self, crop_size: int, lengths: tuple[float, float] = (1.0, 100.0), max_kernel: int = 75,
                 max_noise: float = 0.02, saturation: float = 0.2, sized_fraction: float = 0.0) -> None:
        if not 0 < lengths[0] <= lengths[1]:
            raise ValueError(f"lengths must be (low, high) with 0 < low <= high, got {lengths}")
        if max_kernel < 5 or crop_size < 8 or not 0 <= saturation <= 1 or not 0 <= sized_fraction <= 1 \
                or max_noise < 0:
            raise ValueError("need max_kernel >= 5, crop_size >= 8, saturation and sized_fraction in [0, 1], "
                             "max_noise >= 0")
        self.crop_size, self.lengths, self.max_kernel = crop_size, lengths, max_kernel
        self.max_noise, self.saturation, self.sized_fraction = max_noise, saturation, sized_fraction

    @property
    def region_size(self) -> int:
        return self.crop_size + self.max_kernel - 1

    @property
    def kernel_grid(self) -> int:
        """The odd side of the kernels `kernels` returns: `max_kernel`, less one if even."""
        return self.max_kernel - 1 + self.max_kernel % 2

    def kernels(self, n: int, rng: torch.Generator, steps: int = 2000) -> torch.Tensor:
        """`n` kernels [n, grid, grid] float32 on `rng`'s device, centred and summing to 1, all drawn at once:
        the law of the per-kernel `shake_kernel` / `sized_shake_kernel`, not their random stream."""
        device = rng.device
        uniform = torch.rand(n, 2, generator=rng, device=device, dtype=torch.float64)
        sizes = 5 + 2 * torch.randint((self.max_kernel - 5) // 2 + 1, (n,), generator=rng, device=device)
        stretch = uniform[:, 0] < self.sized_fraction
        low, high = self.lengths
        lengths = torch.where(stretch, sizes * (1 + uniform[:, 1]), low + (high - low) * uniform[:, 1])
        paths = random_trajectories(lengths, steps, rng)
        return rasterize_trajectories(paths, self.kernel_grid, torch.where(stretch, sizes, 0))

    def __call__(self, regions: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Regions [N,3,region,region] in [0, 1] -> (blurred, sharp) crops [N,3,crop,crop], on the regions'
        device. Draws there from a generator seeded by `rng` when `rng` lives elsewhere (`device_generator`)."""
        rng = device_generator(rng, regions.device)
        n = regions.shape[0]
        kernels = self.kernels(n, rng)
        saturate, gain, sigma = torch.rand(3, n, generator=rng, device=regions.device)
        # Scene radiance above the sensor's white point: blurred, the highlight still clips. Only the chosen
        # regions are touched (a full-batch `where` costs a CPU more than the kernels do).
        chosen = (saturate < self.saturation).nonzero()[:, 0]
        if len(chosen):
            hot = regions[chosen]
            hot = torch.where(hot > 0.9, hot * (1.5 + 2.5 * gain[chosen]).to(hot).view(-1, 1, 1, 1), hot)
            regions = regions.index_copy(0, chosen, hot)
        blurred = blur_valid(regions, kernels, self.crop_size).clamp(0, 1)
        lo = (self.region_size - self.crop_size) // 2
        sharp = regions[..., lo:lo + self.crop_size, lo:lo + self.crop_size].clamp(0, 1)
        noisy = add_noise(blurred, self.max_noise * sigma, rng)
        return (noisy * 255).round() / 255, sharp
