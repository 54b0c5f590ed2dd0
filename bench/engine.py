"""`python -m bench.engine`: wall time, CPU time and peak memory of the local `basic_clean` engine
on a 40-megapixel studio photo, and the size of its cut-out PNG, median of three runs, each in a
fresh interpreter.

A fresh interpreter per run makes the peak resident size that of one job (the interpreter, numpy,
Pillow and the input bytes, reported apart as "idle", plus the engine's own work), untouched by
what an earlier run left in the allocator. The photo is drawn with Pillow from fixed shapes and a
seeded noise tile, so every run of every checkout measures the same bytes, and its true mask
gives the IoU of the cut-out at full size. `--write` records the table in BENCHMARKS.md between
markers inside the section "basic_clean local engine", keeping the prose around them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

from aimodel.basic_clean_local import basic_clean_local

ROOT = Path(__file__).resolve().parent.parent
# A common 40-megapixel sensor size, just under the 40,000,000-pixel upload limit.
PHOTO_SIZE = (7728, 5152)
RUNS = 3
SEED = 20261127
SECTION_TITLE = "## basic_clean local engine"
TABLE_START = "<!-- bench.engine: measured table, rewritten by `python -m bench.engine --write` -->"
TABLE_END = "<!-- bench.engine: end of measured table -->"
HEADER = ["run", "engine s", "engine CPU s", "peak RSS MiB", "idle RSS MiB", "cutout PNG MiB", "cutout IoU"]


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    peak_mib: float
    idle_mib: float
    cutout_mib: float
    iou: float


def studio_photo(size: tuple[int, int] = PHOTO_SIZE) -> tuple[bytes, Image.Image]:
    """A JPEG of a labelled bottle on a graded grey backdrop with a contact shadow, and its true mask."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    scene = ImageOps.colorize(gradient, (236, 237, 240), (188, 190, 196))

    # Shapes are drawn at a quarter of the size and enlarged, which softens their edges like a lens.
    small = (width // 4, height // 4)
    unit, middle = small[1] / 100, small[0] / 2
    shadow = Image.new("L", small, 0)
    ImageDraw.Draw(shadow).ellipse((middle - 42 * unit, 80 * unit, middle + 46 * unit, 92 * unit), fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(4 * unit)).resize(size, Image.Resampling.BILINEAR)
    scene.paste((90, 92, 98), mask=shadow)

    outline = Image.new("L", small, 0)
    draw = ImageDraw.Draw(outline)
    for half_width, top, bottom, radius in ((34, 30, 88, 7), (10, 16, 32, 2), (13, 6, 18, 3)):
        box = (middle - half_width * unit, top * unit, middle + half_width * unit, bottom * unit)
        draw.rounded_rectangle(box, radius=radius * unit, fill=255)
    mask = outline.resize(size, Image.Resampling.BILINEAR)

    # Cylinder shading, darker at both sides, brightest left of centre; then a printed label.
    across = np.abs(np.linspace(-1.0, 1.0, 512, dtype=np.float32) + 0.25)
    profile = np.clip(255 * (1 - across**1.5), 0, 255).astype(np.uint8)
    shading = Image.fromarray(np.tile(profile, (2, 1)), "L").resize(size, Image.Resampling.BILINEAR)
    product = ImageOps.colorize(shading, (18, 52, 40), (120, 190, 160))
    scale = 4 * unit
    label = ImageDraw.Draw(product)
    left, top = round(4 * middle - 27 * scale), round(56 * scale)
    label.rectangle((left, top, round(4 * middle + 27 * scale), round(76 * scale)), fill=(226, 200, 140))
    font = ImageFont.load_default(size=round(4 * scale))
    for line, text in enumerate(("EAU DE SAMPLE", "botanical no. 7", "100 ml  3.4 fl oz")):
        label.text((left + 4 * scale, top + (2 + 6 * line) * scale), text, fill=(30, 30, 34), font=font)
    scene.paste(product, mask=mask)

    # Sensor noise from one seeded tile: cheap at 40 MP and the same on every run.
    tile = Image.fromarray(np.random.default_rng(SEED).normal(128, 3, (1024, 1024, 3)).astype(np.uint8), "RGB")
    noise = Image.new("RGB", size)
    for y in range(0, height, tile.height):
        for x in range(0, width, tile.width):
            noise.paste(tile, (x, y))
    scene = ImageChops.add(scene, noise, offset=-128)

    buffer = io.BytesIO()
    scene.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), mask.point([0] * 128 + [255] * 128)


def _peak_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent through exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("bench.engine needs Linux: /proc/self/status has no VmHWM")


def _measure_once(photo: Path, truth: Path) -> Run:
    """One job in this (fresh) interpreter; the IoU is computed after the peak is read."""
    data = photo.read_bytes()
    idle = _peak_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    outputs = basic_clean_local(image=data)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = _peak_mib()
    cutout = next(output for output in outputs if output.name == "cutout")
    predicted = np.asarray(Image.open(io.BytesIO(cutout.data)).getchannel("A")) > 127
    expected = np.asarray(Image.open(truth)) > 127
    iou = float((predicted & expected).sum() / (predicted | expected).sum())
    return Run(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        peak_mib=peak,
        idle_mib=idle,
        cutout_mib=len(cutout.data) / 2**20,
        iou=iou,
    )


def _run_in_child(photo: Path, truth: Path) -> Run:
    command = [sys.executable, "-m", "bench.engine", "--child", str(photo), str(truth)]
    # The worker's environment (Dockerfile, Procfile): one BLAS thread per process.
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=True)
    return Run(**json.loads(finished.stdout.splitlines()[-1]))


def _rows(runs: list[Run]) -> list[list[str]]:
    def row(name: str, run: Run) -> list[str]:
        return [
            name,
            f"{run.seconds:.2f}",
            f"{run.cpu_seconds:.2f}",
            f"{run.peak_mib:.0f}",
            f"{run.idle_mib:.0f}",
            f"{run.cutout_mib:.2f}",
            f"{run.iou:.4f}",
        ]

    median = Run(
        seconds=statistics.median(r.seconds for r in runs),
        cpu_seconds=statistics.median(r.cpu_seconds for r in runs),
        peak_mib=statistics.median(r.peak_mib for r in runs),
        idle_mib=statistics.median(r.idle_mib for r in runs),
        cutout_mib=statistics.median(r.cutout_mib for r in runs),
        iou=min(r.iou for r in runs),
    )
    return [*(row(str(n), r) for n, r in enumerate(runs, start=1)), row("median", median)]


def _table(rows: list[list[str]], *, markdown: bool) -> str:
    if markdown:
        lines = [HEADER, ["---"] * len(HEADER), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(cell) for cell in column) for column in zip(HEADER, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True)) for cells in [HEADER, *rows]
    )


def _context(photo_bytes: int) -> str:
    megapixels = PHOTO_SIZE[0] * PHOTO_SIZE[1] / 1e6
    return (
        f"Measured on {datetime.now(UTC).date().isoformat()} (UTC) by `.venv/bin/python -m bench.engine`: "
        f"a {PHOTO_SIZE[0]}×{PHOTO_SIZE[1]} ({megapixels:.1f} MP) JPEG of {photo_bytes / 2**20:.1f} MiB, "
        f"{RUNS} runs each in a fresh interpreter, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Pillow {PIL.__version__}, numpy {np.__version__}. The median row takes the median of each "
        "column and the lowest IoU."
    )


def _record(path: Path, block: str) -> None:
    text = path.read_text()
    measured = f"{TABLE_START}\n{block}\n{TABLE_END}"
    if TABLE_START in text and TABLE_END in text:
        before, rest = text.split(TABLE_START, 1)
        text = before + measured + rest.split(TABLE_END, 1)[1]
    else:
        text = f"{text.rstrip()}\n\n{SECTION_TITLE}\n\n{measured}\n"
    path.write_text(text)


def run(*, write: bool) -> str:
    """Measure, optionally record in BENCHMARKS.md, and return the table for the console."""
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as folder:
        photo, truth = Path(folder) / "photo.jpg", Path(folder) / "truth.png"
        data, mask = studio_photo()
        photo.write_bytes(data)
        mask.save(truth)
        runs = [_run_in_child(photo, truth) for _ in range(RUNS)]
    rows = _rows(runs)
    if write:
        _record(ROOT / "BENCHMARKS.md", f"{_context(len(data))}\n\n{_table(rows, markdown=True)}")
    return f"{_context(len(data))}\n\n{_table(rows, markdown=False)}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    parser.add_argument("--child", nargs=2, metavar=("PHOTO", "TRUTH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(asdict(_measure_once(Path(arguments.child[0]), Path(arguments.child[1])))))
    else:
        print(run(write=arguments.write))
    return 0


if __name__ == "__main__":
    sys.exit(main())
