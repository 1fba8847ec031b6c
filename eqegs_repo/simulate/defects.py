"""Hot, flickering and dead pixels written into a synthetic sample's sensor files
(docs/synthetic.md#pixel-defects).

A real detector has hot pixels of every brightness, some of them only in part of the frames,
and dead ones. :func:`add_pixel_defects` puts such pixels into the ``sensor_<k>.npy`` files of a
sample folder written by :func:`eqegs_repo.simulate.synthetic.write_sample`, in place, and
returns where they are. Rates are relative to the median pixel rate of the sample (counts per
pixel per frame, over the first frames).
"""
from __future__ import annotations

import os

import numpy as np

from eqegs_repo.errors import BadInput

KINDS = ("hot", "flicker", "late", "dead")
"""``hot``: ``factor`` x the median rate in every frame; ``flicker``: that rate in bursts of 8 to
128 frames covering about ``duty`` of the run, ordinary otherwise; ``late``: that rate from a
random frame in the second half of the run on; ``dead``: 0 in every frame."""
_MEDIAN_FRAMES = 64  # frames whose mean gives the median pixel rate


def add_pixel_defects(folder: str | os.PathLike, defects, *, seed: int = 0, duty: float = 0.3,
                      avoid: np.ndarray | None = None) -> list[dict]:
    """Write pixel defects into the sensor files of the sample ``folder`` (in place).

    ``defects``: ``[(kind, factor, count), ...]``, ``count`` pixels of ``kind`` (one of
    :data:`KINDS`) at ``factor`` x the median rate (ignored for ``dead``). Pixels are drawn at
    random (``seed``) among all sensors, each at most once, never where ``avoid`` (n_sensors, rows,
    cols) bool is True (e.g. around the direct beam, whose centroid a bright pixel would pull).
    Hot counts are the pixel's own counts plus Poisson((factor − 1) x median rate) draws, clipped
    to the files' dtype.

    Returns one dict per pixel: ``kind``, ``factor``, ``sensor``, ``row``, ``col`` and ``frames``
    (the number of frames in which it is hot or dead)."""
    raw = os.path.join(folder, "train_integrated")
    files = sorted((name for name in os.listdir(raw) if name.startswith("sensor_") and name.endswith(".npy")),
                   key=lambda name: int(name[len("sensor_"):-len(".npy")]))
    stacks = [np.load(os.path.join(raw, name), mmap_mode="r+") for name in files]
    n_frames, rows, cols = stacks[0].shape
    rate = float(np.median(np.concatenate([s[:_MEDIAN_FRAMES].mean(axis=0).ravel() for s in stacks])))
    rng = np.random.default_rng(seed)
    wanted = [(kind, float(factor)) for kind, factor, count in defects for _ in range(int(count))]
    for kind, factor in wanted:
        if kind not in KINDS:
            raise BadInput(f"pixel defect kind must be one of {KINDS}, got {kind!r}")
        if kind != "dead" and not factor >= 1:
            raise BadInput(f"a {kind} pixel's factor must be >= 1 (x the median rate), got {factor!r}")
    free = np.ones(len(stacks) * rows * cols, bool) if avoid is None else ~np.asarray(avoid, bool).ravel()
    if free.size != len(stacks) * rows * cols or free.sum() < len(wanted):
        raise BadInput(f"avoid must be ({len(stacks)}, {rows}, {cols}) bool leaving {len(wanted)} pixels free")
    places = rng.choice(np.flatnonzero(free), size=len(wanted), replace=False)
    out = []
    for (kind, factor), place in zip(wanted, places):
        sensor, rest = divmod(int(place), rows * cols)
        row, col = divmod(rest, cols)
        counts = np.asarray(stacks[sensor][:, row, col])
        on = _frames_on(kind, n_frames, duty, rng)
        if kind == "dead":
            counts = np.where(on, 0, counts)
        else:
            extra = rng.poisson((factor - 1.0) * max(rate, 1e-3), size=n_frames) * on
            limit = np.iinfo(counts.dtype).max if counts.dtype.kind in "iu" else np.inf
            counts = np.minimum(counts.astype(np.float64) + extra, limit).astype(counts.dtype)
        stacks[sensor][:, row, col] = counts
        out.append({"kind": kind, "factor": factor, "sensor": sensor, "row": row, "col": col,
                    "frames": int(on.sum())})
    for stack in stacks:
        stack.flush()
    return out


def _frames_on(kind, n_frames, duty, rng):
    """(frames,) bool: the frames in which a pixel of ``kind`` misbehaves."""
    on = np.zeros(n_frames, bool)
    if kind in ("hot", "dead"):
        on[:] = True
    elif kind == "late":
        on[int(rng.integers(n_frames // 2, n_frames)):] = True
    else:
        while on.mean() < duty:
            length = int(rng.integers(8, 129))
            start = int(rng.integers(0, max(1, n_frames - length)))
            on[start:start + length] = True
    return on
