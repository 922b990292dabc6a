"""Plain-text tables of ``{"metrics": {SET: {METHOD: {METRIC: value}}}}`` for the terminal and README."""
from __future__ import annotations

COLUMNS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "psnr_y_noshave", "psnr_rgb_report", "psnr_y_8bit",
           "ssim_y_8bit")


def metrics_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    present = [c for c in COLUMNS if any(c in m for methods in metrics.values() for m in methods.values())]
    header = ["set", "method", *present]
    rows = [header]
    for set_name, methods in metrics.items():
        for method, values in methods.items():
            cells = [f"{values[c]:.4f}" if c.startswith("ssim") else f"{values[c]:.2f}"
                     if c in values else "-" for c in present]
            rows.append([set_name, method, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
