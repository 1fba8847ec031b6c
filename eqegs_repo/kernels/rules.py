"""The parameter rules that the kernels and the spice schemas share, one function per rule.

Each function returns the list of what is wrong (empty when the values are fine), so that a
spice check (:mod:`eqegs_repo.params.types`) can report the messages as they are and a kernel
can raise them as :class:`~eqegs_repo.errors.BadInput`. Every other place that needs one of
these rules (cooking, export, the simulator's truth) calls the function here, so the same bad
value gives the same message whichever way it comes in. Call them as ``rules.q_range_problems``
(module attribute), not as an imported name.

- :func:`q_range_problems`: the q range [q_min, q_max] summed into the quasi-elastic spectrum
  (docs/physics.md#energy-spectrum-and-isf), nm⁻¹;
- :func:`roi_problems`: the corners of a manual region of interest (docs/physics.md#reconstruction),
  inclusive pixel indices.

Field-by-field ranges of the spice records (q_min ≥ 0, corners ≥ 0) are also declared on their
schema fields, which check them first and show them in the parameter tables.
"""
from __future__ import annotations

import numpy as np

Q_RANGE_RULE = "0 <= q_min < q_max, nm^-1"


def q_range_problems(q_min, q_max) -> list[str]:
    """What is wrong with the q range [``q_min``, ``q_max``] (nm⁻¹): both ends set, real numbers,
    0 ≤ q_min < q_max.  An unset end is reported as ``q_range.<name> is not set``."""
    missing = [f"q_range.{name} is not set" for name, value in (("q_min", q_min), ("q_max", q_max))
               if value is None]
    if missing:
        return missing
    problems = [f"q_range.{name} must be a number ({Q_RANGE_RULE}), found {value!r}"
                for name, value in (("q_min", q_min), ("q_max", q_max)) if _number(value) is None]
    if problems:
        return problems
    if not _number(q_min) >= 0:
        return [f"q_min = {q_min} must be >= 0 ({Q_RANGE_RULE})"]
    if not _number(q_min) < _number(q_max):
        return [f"q_min = {q_min} must be smaller than q_max = {q_max} ({Q_RANGE_RULE})"]
    return []


def roi_problems(x0, y0, x1, y1, *, image_shape: tuple[int, int] | None = None) -> list[str]:
    """What is wrong with the manual ROI corners (inclusive pixel indices: columns x0..x1, rows
    y0..y1): each an integer, inside an image of ``image_shape`` = (H, W) when given (else
    ≥ 0), and x0 ≤ x1, y0 ≤ y1.  Messages name the field as ``roi.x0`` …"""
    height, width = (None, None) if image_shape is None else (int(n) for n in image_shape)
    problems, values = [], {}
    for name, value, limit, axis in (("x0", x0, width, "columns"), ("y0", y0, height, "rows"),
                                     ("x1", x1, width, "columns"), ("y1", y1, height, "rows")):
        if value is None:
            problems.append(f"roi.{name} is not set; a manual ROI needs all four corners (inclusive px)")
            continue
        number = _number(value)
        if number is None or not number.is_integer():
            problems.append(f"roi.{name} must be an integer pixel index, got {value!r}")
            continue
        index = int(number)
        if limit is None and index < 0:
            problems.append(f"roi.{name} = {index} must be >= 0 (px)")
        elif limit is not None and not 0 <= index < limit:
            problems.append(f"roi.{name} = {index} is outside the image: {axis} run from 0 to {limit - 1}")
        else:
            values[name] = index
    if problems:
        return problems
    return [f"roi.{end} = {values[end]} must be >= roi.{start} = {values[start]} (end corners are inclusive)"
            for start, end in (("x0", "x1"), ("y0", "y1")) if values[end] < values[start]]


def _number(value) -> float | None:
    """``value`` as a float, or None when it is a bool or not a number."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
