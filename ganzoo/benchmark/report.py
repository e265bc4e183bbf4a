"""What a benchmark run concludes, and the table `ganzoo benchmark` prints without --json.

`default_summary`: what the default path (`--precision auto`) and its `--precision bf16` form achieve;
`fastest`: the fastest path within the exact tolerance, and within each path's own; `table_rows`: one row per
path (and per tiling row).
"""

from __future__ import annotations

from typing import Any

from ganzoo.benchmark.paths import DEFAULT, DEFAULT_BF16, TOLERANCE

__all__ = ["default_summary", "fastest", "table_rows"]


def default_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the default path (`precision="auto"`) and its `--precision bf16` form achieve: ratio to the naive
    baseline, MFU where the peak is known, PSNR difference where scored, precision and first calls."""
    keys = ("ratio", "images_per_s", "mfu", "psnr_delta_db", "mean_abs_diff", "max_abs_diff", "first_calls_ms")
    summary = {}
    for label, name in (("auto", DEFAULT), ("bf16", DEFAULT_BF16)):
        row = next((r for r in rows if r["name"] == name and r["status"] == "ok"), None)
        if row is not None:
            summary[label] = {"precision": row["settings"]["precision"],
                              **{key: row[key] for key in keys if key in row}}
    return summary


def fastest(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The names of the fastest path within the exact tolerance and of the fastest within its own tolerance."""
    ok = [row for row in rows if row["status"] == "ok" and row["matches"]]
    return {"fastest_matching": max([row for row in ok if exact(row)], key=lambda row: row["images_per_s"])["name"],
            "fastest_matching_any_precision": max(ok, key=lambda row: row["images_per_s"])["name"]}


def exact(row: dict[str, Any]) -> bool:
    return "max_abs_diff" in row["settings"]["tolerance"]


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the readable table (`ganzoo benchmark` without --json)."""
    header = ["path", "median ms", "p10-p90 ms", "img/s", "out MP/s", "TFLOP/s", "peak MB", "x base",
              "max |diff|", "mean |diff|"]
    if "reference" in result:
        header.append("PSNR delta dB")
    if any("mfu" in row for row in result["paths"]):
        header.append("MFU")
    rows = []
    for row in result["paths"] + result.get("tiling", {}).get("paths", []):
        if row["status"] != "ok":
            rows.append([row["name"], row["status"]] + [""] * (len(header) - 2))
            continue
        lat = row["latency_ms"]
        exact = "max_abs_diff" in row["settings"].get("tolerance", {"max_abs_diff": TOLERANCE})
        cells = [row["name"], f"{lat['median']:.2f}", f"{lat['p10']:.2f}-{lat['p90']:.2f}",
                 f"{row['images_per_s']:.3g}", f"{row['output_mpix_per_s']:.3g}", f"{row['tflop_per_s']:.3g}",
                 f"{row['peak_mem_mb']:.1f}", f"{row['ratio']:.2f}",
                 f"{row['max_abs_diff']:.1e}" + ("" if row["matches"] or not exact else " !"),
                 f"{row['mean_abs_diff']:.1e}" + ("" if row["matches"] or exact else " !")]
        if "reference" in result:
            cells.append(f"{row['psnr_delta_db']:+.3f}" if "psnr_delta_db" in row else "")
        if len(header) > len(cells):
            cells.append(f"{100 * row['mfu']:.1f}%" if "mfu" in row else "")
        rows.append(cells)
    return header, rows
