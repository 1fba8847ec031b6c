"""How the sensors of the CITIUS detector are placed on the image canvas
(docs/physics.md#reconstruction, docs/physics.md#type-sensor_layout).

Pure module: numpy in, numpy out, no I/O.  A :class:`SensorLayout` says where each sensor's
(rows, cols) array goes on the (H, W) canvas, with a flip and a (row, col) offset, and whether
sensors are tiled (``"tile"``: distinct places, gaps stay 0) or overlaid (``"sum"``).

- :func:`combine` turns per-sensor blocks (frames, rows, cols) into canvas blocks
  (frames, H, W) float32, so callers can stream frames block by block;
- :func:`coverage` is the (H, W) int map of how many sensors cover each pixel (gaps = 0);
- :func:`sensor_pixels` maps each pixel of a sensor to its canvas pixel, so that canvas-wide
  operators (an integrator's pixel → bin map, a box) can be applied to the sensor blocks as
  read, without building the canvas; :func:`sensor_window` does it for a rectangle and
  :func:`combine_image` places per-sensor (rows, cols) images on a float64 canvas;
- :func:`split` is the inverse: exact for ``"tile"``; for ``"sum"`` each covering sensor gets
  canvas/coverage, so ``combine(split(x)) == x`` on covered pixels.

The mapping form (:meth:`SensorLayout.to_mapping` / :meth:`SensorLayout.from_mapping`) is the
content of the ``sensor_layout`` spice record.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eqegs_repo.errors import BadInput

MODES = ("tile", "sum")
FLIPS = ("none", "ud", "lr", "rot180")
SCHEMA_VERSION = 1
_FIELDS = ("n_sensors", "sensor_shape", "mode", "offsets", "flips", "canvas_shape")


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """A pair of ints >= ``minimum`` from a list/tuple, or a BadInput naming ``name``."""
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        or min(value) < minimum
    ):
        raise BadInput(f"sensor layout: {name} must be a pair of integers >= {minimum}, found {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True, kw_only=True)
class SensorLayout:
    """Placement of ``n_sensors`` sensor arrays of ``sensor_shape`` (rows, cols) on a canvas.

    ``offsets[k]`` = (row, col) of sensor k's top-left corner on the canvas (after its flip);
    ``flips[k]`` in ``FLIPS`` is applied to the sensor array before placing it (``ud``: rows
    reversed, ``lr``: columns reversed, ``rot180``: both); ``mode`` in ``MODES``;
    ``canvas_shape`` = (H, W).  Every field is given by name.  Lists are accepted and stored as
    tuples.  Invalid values raise :class:`eqegs_repo.errors.BadInput` naming the field.
    """

    n_sensors: int
    sensor_shape: tuple[int, int]
    mode: str
    offsets: tuple[tuple[int, int], ...]
    flips: tuple[str, ...]
    canvas_shape: tuple[int, int]

    def __post_init__(self):
        n = self.n_sensors
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise BadInput(f"sensor layout: n_sensors must be an integer >= 1, found {n!r}")
        object.__setattr__(self, "n_sensors", int(n))
        object.__setattr__(self, "sensor_shape", _pair(self.sensor_shape, "sensor_shape", 1))
        object.__setattr__(self, "canvas_shape", _pair(self.canvas_shape, "canvas_shape", 1))
        if self.mode not in MODES:
            raise BadInput(f"sensor layout: mode must be one of {MODES}, found {self.mode!r}")
        if isinstance(self.offsets, str) or not isinstance(self.offsets, Sequence) or len(self.offsets) != n:
            raise BadInput(f"sensor layout: offsets must list {n} (row, col) pairs, one per sensor, found {self.offsets!r}")
        offsets = tuple(_pair(o, f"offsets[{k}]", 0) for k, o in enumerate(self.offsets))
        object.__setattr__(self, "offsets", offsets)
        if isinstance(self.flips, str) or not isinstance(self.flips, Sequence) or len(self.flips) != n:
            raise BadInput(f"sensor layout: flips must list {n} entries from {FLIPS}, found {self.flips!r}")
        for k, flip in enumerate(self.flips):
            if flip not in FLIPS:
                raise BadInput(f"sensor layout: flips[{k}] must be one of {FLIPS}, found {flip!r}")
        object.__setattr__(self, "flips", tuple(self.flips))
        rows, cols = self.sensor_shape
        height, width = self.canvas_shape
        for k, (r0, c0) in enumerate(offsets):
            if r0 + rows > height or c0 + cols > width:
                raise BadInput(
                    f"sensor layout: sensor {k} at offset ({r0}, {c0}) with shape ({rows}, {cols}) "
                    f"does not fit in the canvas ({height}, {width})"
                )
        if self.mode == "tile":
            for a in range(n):
                for b in range(a + 1, n):
                    (ra, ca), (rb, cb) = offsets[a], offsets[b]
                    if abs(ra - rb) < rows and abs(ca - cb) < cols:
                        raise BadInput(
                            f"sensor layout: in 'tile' mode sensors {a} and {b} overlap "
                            f"(offsets ({ra}, {ca}) and ({rb}, {cb}), shape ({rows}, {cols})); use mode 'sum' to overlay"
                        )

    @classmethod
    def strips(cls, *, n_sensors: int = 3, sensor_shape: tuple[int, int] = (728, 128)) -> "SensorLayout":
        """``n_sensors`` strips of ``sensor_shape`` tiled side by side, no flips, no gaps.

        Sensor k = canvas[:, k·cols:(k+1)·cols]; canvas (rows, n_sensors·cols).  This is the
        scaled-down constructor for small synthetic presets, e.g.
        ``strips(n_sensors=3, sensor_shape=(64, 16))``.
        """
        rows, cols = _pair(sensor_shape, "sensor_shape", 1)
        return cls(
            n_sensors=n_sensors,
            sensor_shape=(rows, cols),
            mode="tile",
            offsets=tuple((0, k * cols) for k in range(int(n_sensors))),
            flips=("none",) * int(n_sensors),
            canvas_shape=(rows, int(n_sensors) * cols),
        )

    @classmethod
    def default(cls) -> "SensorLayout":
        """The default layout: 3 sensors of 728 x 128 tiled into the app's 728 x 384 canvas."""
        return cls.strips(n_sensors=3, sensor_shape=(728, 128))

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> "SensorLayout":
        """Build from the ``sensor_layout`` record data (``schema_version`` optional, must be 1)."""
        if not isinstance(mapping, Mapping):
            raise BadInput(f"sensor layout: expected a mapping with fields {_FIELDS}, found {type(mapping).__name__}")
        version = mapping.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise BadInput(f"sensor layout: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
        missing = [f for f in _FIELDS if f not in mapping]
        unknown = sorted(set(mapping) - set(_FIELDS) - {"schema_version"})
        if missing or unknown:
            raise BadInput(f"sensor layout: missing fields {missing}, unknown fields {unknown}; expected {_FIELDS}")
        return cls(**{f: mapping[f] for f in _FIELDS})

    def to_mapping(self) -> dict:
        """Plain-data form (lists, ints, strings) for YAML/JSON; inverse of :meth:`from_mapping`."""
        return {
            "schema_version": SCHEMA_VERSION,
            "n_sensors": self.n_sensors,
            "sensor_shape": list(self.sensor_shape),
            "mode": self.mode,
            "offsets": [list(o) for o in self.offsets],
            "flips": list(self.flips),
            "canvas_shape": list(self.canvas_shape),
        }

    def canvas_slices(self, k: int) -> tuple[slice, slice]:
        """(row slice, col slice) of the canvas covered by sensor k."""
        r0, c0 = self.offsets[k]
        rows, cols = self.sensor_shape
        return slice(r0, r0 + rows), slice(c0, c0 + cols)


def _oriented(block: np.ndarray, flip: str) -> np.ndarray:
    """View of a (..., rows, cols) block with the flip applied (flips are their own inverse)."""
    if flip == "ud":
        return block[..., ::-1, :]
    if flip == "lr":
        return block[..., :, ::-1]
    if flip == "rot180":
        return block[..., ::-1, ::-1]
    return block


def coverage(layout: SensorLayout) -> np.ndarray:
    """(H, W) int32 map: how many sensors cover each canvas pixel (0 in gaps)."""
    counts = np.zeros(layout.canvas_shape, dtype=np.int32)
    for k in range(layout.n_sensors):
        counts[layout.canvas_slices(k)] += 1
    return counts


def sensor_pixels(layout: SensorLayout, k: int) -> np.ndarray:
    """(rows, cols) int64: the flat canvas index (row·W + col) where each pixel of sensor k lands.

    ``block[f, r, c]`` of sensor k is added to ``canvas[f].flat[sensor_pixels(layout, k)[r, c]]``
    by :func:`combine` (flips included), so for any linear operator on canvas pixels, e.g. a
    (bins × H·W) matrix M, sensor k contributes ``M[:, sensor_pixels(layout, k).ravel()]`` applied
    to its own block.  Indices are distinct within one sensor.
    """
    height, width = layout.canvas_shape
    canvas_index = np.arange(height * width, dtype=np.int64).reshape(height, width)
    return np.ascontiguousarray(_oriented(canvas_index[layout.canvas_slices(k)], layout.flips[k]))


def sensor_window(layout: SensorLayout, k: int, *, rows: slice, cols: slice) -> tuple[slice, slice] | None:
    """The part of sensor k that lands in the canvas rectangle ``rows`` x ``cols`` (slices with
    step 1, canvas px), as (row slice, col slice) of the sensor's own array, or None when the
    sensor does not reach the rectangle.  Summing ``block[:, row_slice, col_slice]`` over the
    sensors gives the rectangle's sum on the combined canvas.
    """
    pixels = sensor_pixels(layout, k)
    width = layout.canvas_shape[1]
    canvas_rows, canvas_cols = pixels[:, 0] // width, pixels[0, :] % width
    inside_rows = np.flatnonzero((canvas_rows >= rows.start) & (canvas_rows < rows.stop))
    inside_cols = np.flatnonzero((canvas_cols >= cols.start) & (canvas_cols < cols.stop))
    if inside_rows.size == 0 or inside_cols.size == 0:
        return None
    return (slice(int(inside_rows[0]), int(inside_rows[-1]) + 1),
            slice(int(inside_cols[0]), int(inside_cols[-1]) + 1))


def combine_image(sensor_images: Sequence[np.ndarray], *, layout: SensorLayout) -> np.ndarray:
    """Place one (rows, cols) image per sensor (e.g. frame sums, any real dtype) on a new (H, W)
    float64 canvas: copies in tile mode, sums in sum mode, gaps 0.  Unlike :func:`combine` the
    values are not rounded to float32 (integers are exact up to 2⁵³)."""
    if len(sensor_images) != layout.n_sensors:
        raise BadInput(f"combine_image: expected {layout.n_sensors} sensor images (layout.n_sensors), "
                       f"found {len(sensor_images)}")
    image = np.zeros(layout.canvas_shape, dtype=np.float64)
    flat = image.reshape(-1)
    for k, sensor_image in enumerate(sensor_images):
        if np.shape(sensor_image) != layout.sensor_shape:
            raise BadInput(f"combine_image: sensor {k} image must have shape {layout.sensor_shape}, "
                           f"found {np.shape(sensor_image)}")
        flat[sensor_pixels(layout, k)] += sensor_image
    return image


def combine(sensor_blocks: Sequence[np.ndarray], *, layout: SensorLayout, out: np.ndarray | None = None) -> np.ndarray:
    """Place per-sensor blocks on the canvas.

    ``sensor_blocks``: ``layout.n_sensors`` arrays (frames, rows, cols) with the same frame
    count, any numeric dtype (memmap slices are fine).  Returns ``out`` or a new float32 array
    (frames, H, W): tile mode copies each sensor to its place (gaps = 0), sum mode adds them.
    ``out``, if given, must be float32 of that shape; it is overwritten.
    """
    if len(sensor_blocks) != layout.n_sensors:
        raise BadInput(f"combine: expected {layout.n_sensors} sensor blocks (layout.n_sensors), found {len(sensor_blocks)}")
    frames = None
    for k, block in enumerate(sensor_blocks):
        shape = np.shape(block)
        if len(shape) != 3 or tuple(shape[1:]) != layout.sensor_shape:
            raise BadInput(
                f"combine: sensor {k} block must have shape (frames, {layout.sensor_shape[0]}, {layout.sensor_shape[1]}), "
                f"found {shape}"
            )
        if frames is None:
            frames = shape[0]
        elif shape[0] != frames:
            raise BadInput(f"combine: sensor {k} block has {shape[0]} frames, sensor 0 has {frames}")
    expected = (frames,) + layout.canvas_shape
    if out is None:
        out = np.zeros(expected, dtype=np.float32)
    else:
        if out.shape != expected or out.dtype != np.float32:
            raise BadInput(f"combine: out must be float32 with shape {expected}, found {out.dtype} {out.shape}")
        out[...] = 0
    for k, block in enumerate(sensor_blocks):
        rows, cols = layout.canvas_slices(k)
        oriented = _oriented(np.asarray(block), layout.flips[k])
        if layout.mode == "tile":
            out[:, rows, cols] = oriented
        else:
            out[:, rows, cols] += oriented
    return out


def split(canvas_block: np.ndarray, *, layout: SensorLayout) -> list[np.ndarray]:
    """Cut a canvas block (frames, H, W) into ``layout.n_sensors`` sensor blocks (frames, rows, cols).

    Tile mode: each sensor gets a copy of its canvas region, un-flipped (exact inverse of
    :func:`combine`).  Sum mode: each covering sensor gets canvas/coverage (float64), so that
    combining the parts gives the canvas back on covered pixels.  The dtype is kept in tile mode.
    """
    canvas_block = np.asarray(canvas_block)
    if canvas_block.ndim != 3 or canvas_block.shape[1:] != layout.canvas_shape:
        raise BadInput(
            f"split: canvas block must have shape (frames, {layout.canvas_shape[0]}, {layout.canvas_shape[1]}), "
            f"found {canvas_block.shape}"
        )
    if layout.mode == "sum":
        share = np.where(coverage(layout) > 0, 1.0 / np.maximum(coverage(layout), 1), 0.0)
        canvas_block = canvas_block * share
    parts = []
    for k in range(layout.n_sensors):
        rows, cols = layout.canvas_slices(k)
        parts.append(np.ascontiguousarray(_oriented(canvas_block[:, rows, cols], layout.flips[k])))
    return parts
