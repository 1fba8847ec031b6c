"""What the streaming passes' check of the counts costs: per block of ``BLOCK_BYTES`` raw data,
the check (negative counts; NaN/inf for floats) against reading the block from the page cache.

    python benchmarks/bench_count_checks.py [--frames 256] [--repeat 15]

A run of 3 full-size sensors (728 x 128) is written per dtype into a temporary folder and read
once to warm the page cache; then each block is read (positioned reads into a reused buffer, as
the passes do) and checked, and the medians per block are printed. Unsigned counts need no check.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import fsspec
import numpy as np

from eqegs_repo.cooking import passes
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.frames import SensorStack

SENSOR_SHAPE = (728, 128)


def median_ms(function, repeat):
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    fs = fsspec.filesystem("file")
    rng = np.random.default_rng(0)
    print(f"3 sensors of {SENSOR_SHAPE[0]} x {SENSOR_SHAPE[1]}, {args.frames} frames; medians of {args.repeat}")
    with tempfile.TemporaryDirectory() as folder:
        for dtype in ("uint16", "int16", "int32", "int64", "float32", "float64"):
            counts = rng.poisson(3.0, (args.frames,) + SENSOR_SHAPE).astype(dtype)
            paths = [Path(folder, f"{dtype}_{k}.npy") for k in range(3)]
            for path in paths:
                np.save(path, counts)
            stack = SensorStack([NpyFile(fs, str(path)) for path in paths])
            start, stop = passes.block_ranges(stack)[0]
            buffers = [np.empty((stop - start,) + SENSOR_SHAPE, dtype) for _ in paths]
            read = lambda: [f.read_frames(start, stop, out=b) for f, b in zip(stack.files, buffers)]  # noqa: E731
            read()
            read_ms = median_ms(read, args.repeat)
            check_ms = median_ms(lambda: passes._check_counts(stack, buffers, start), args.repeat)
            size = sum(b.nbytes for b in buffers) / 2**20
            print(f"{dtype:8s} block of {stop - start:3d} frames ({size:5.1f} MiB): read {read_ms:6.2f} ms, "
                  f"check {check_ms:5.2f} ms ({100 * check_ms / read_ms:4.1f} % of the read)")
            for f in stack.files:
                f.close()


if __name__ == "__main__":
    main()
