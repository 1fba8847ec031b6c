"""Write a full-size synthetic sample and its background run; print time, size and peak RSS.

Full size = 4092 frames x 3 sensors of 728 x 128, uint32: 4.6 GB per run, 9.2 GB for one sample
and its background (``--samples 3``: 18.4 GB, for the reanalysis benchmark).
Frames are streamed in blocks into memory-mapped .npy files, so the peak RSS stays far below the
file size (target < 1 GB).

    python benchmarks/make_full_tree.py /scratch/eqegs-full            # full preset
    python benchmarks/make_full_tree.py /tmp/eqegs-small --preset small # quick check
    python benchmarks/make_full_tree.py /scratch/eqegs-full3 --samples 3 # background + S001..S003
    python benchmarks/make_full_tree.py /scratch/eqegs-h5 --format hdf5 --compression lz4

The tree is ``<dir>/UserData/u0000000/EQEGS/2025A1234/{S000_noise,S001,...}`` with the truth in
``<dir>/truth/``.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

from eqegs_repo.simulate import synthetic


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="base directory (created; must not hold the tree yet)")
    parser.add_argument("--preset", default="full", choices=sorted(synthetic.PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1, help="samples besides the background run")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing tree")
    parser.add_argument("--format", default="npy", choices=("npy", "hdf5"), help="raw-data format")
    parser.add_argument("--compression", default="zstd", help="with --format hdf5: zstd, lz4, bitshuffle, gzip, none")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        tree = synthetic.write_tree(
            args.directory, preset=args.preset, seed=args.seed, proposals=("2025A1234",),
            samples_per_proposal=args.samples, overwrite=args.overwrite,
            format=args.format, compression=args.compression,
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    params = synthetic.preset_params(args.preset)
    rows, cols = params.sensor_layout.sensor_shape
    print(f"preset {args.preset}: {params.n_frames} frames x {params.sensor_layout.n_sensors} sensors "
          f"of {rows} x {cols}, {params.dtype}")
    for sample in tree.samples["2025A1234"]:
        size = folder_bytes(tree.root / "2025A1234" / sample)
        print(f"  {sample:<12s} {size / 1e9:8.3f} GB  {tree.root / '2025A1234' / sample}")
    total = sum(folder_bytes(tree.root / "2025A1234" / s) for s in tree.samples["2025A1234"])
    print(f"wall time: {elapsed:8.1f} s for {args.samples + 1} runs ({total / 1e6 / elapsed:.0f} MB/s written)")
    print(f"peak RSS:  {peak_mib:8.0f} MiB (target < 1024 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
