"""pyFAI ``.poni`` geometry files, read and written without pyFAI.

A PONI file is ``key: value`` text, ``#`` starts a comment (pyFAI PONI versions 1, 2, 2.1 and
3). Units are SI: ``Distance``, ``Poni1``, ``Poni2`` and ``Wavelength`` in metres, ``Rot1-3`` in
radians, the pixel sizes ``pixel1``/``pixel2`` of ``Detector_config`` (a JSON object; version 1:
``PixelSize1``/``PixelSize2``) in metres. Axis 1 is the slow one, rows (y, down the image), axis 2
the fast one, columns (x): ``Poni1`` is measured along the rows and ``Poni2`` along the columns,
from the outer corner of pixel (0, 0), so the centre of pixel index i lies at (i + 0.5) x pixel.

:class:`Poni` holds a file's values; :func:`read_poni` / :func:`parse_poni` read one (errors name
the file and the key), :func:`write_poni` / :func:`format_poni` write version 2.1.
:func:`beam_centre` and :func:`poni_for_centre` convert between the PONI and the beam centre in
the library's pixel coordinates (x = column, y = row, pixel centres at integers) for pyFAI's
flat detector with tilts rot1, rot2 (docs/spice.md#pyfai-poni-files).
"""
import dataclasses
import json
import math
import os
import uuid

import fsspec

from eqegs_repo.errors import BadInput

SUPPORTED_VERSIONS = (1.0, 2.0, 2.1, 3.0)
DEFAULT_ORIENTATION = 3  # pyFAI's "BottomRight": pixel indices grow with Poni1/Poni2
NUMBER_KEYS = ("distance", "poni1", "poni2", "rot1", "rot2", "rot3")
SPELLING = {"distance": "Distance", "poni1": "Poni1", "poni2": "Poni2", "rot1": "Rot1",
            "rot2": "Rot2", "rot3": "Rot3", "wavelength": "Wavelength", "detector": "Detector",
            "detector_config": "Detector_config", "pixelsize1": "PixelSize1",
            "pixelsize2": "PixelSize2", "poni_version": "poni_version", "parallax": "Parallax"}


@dataclasses.dataclass(frozen=True)
class Poni:
    """The geometry of one PONI file (SI units).

    ``distance_m``: sample to detector plane along its normal; ``poni1_m``/``poni2_m``: the
    point of normal incidence along rows (y) / columns (x) from the corner of pixel (0, 0);
    ``rot1``/``rot2``/``rot3`` (rad): pyFAI's detector rotations; ``wavelength_m``: None when
    the file has none; ``pixel1_m``/``pixel2_m``: pixel size along rows / columns;
    ``max_shape``: (rows, cols) or None; ``parallax``: pyFAI's parallax flag (version 3) or None.
    """

    distance_m: float
    poni1_m: float
    poni2_m: float
    rot1: float
    rot2: float
    rot3: float
    wavelength_m: float | None
    pixel1_m: float
    pixel2_m: float
    detector: str = "Detector"
    max_shape: tuple | None = None
    version: float = 2.1
    parallax: bool | None = None
    source: str = ""


def _number(text, key, source):
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        raise BadInput(f"{source}: {SPELLING.get(key, key)} must be a finite number, found {text!r}")
    return value


def _positive(value, key, source):
    if not value > 0:
        raise BadInput(f"{source}: {key} must be > 0 (metres), found {value!r}")
    return value


def parse_poni(text, source="<poni>"):
    """The :class:`Poni` of PONI file text; ``source`` names the file in errors.

    Keys are case-insensitive and the last occurrence wins, as in pyFAI. Required: Distance,
    Poni1, Poni2, the pixel sizes (Detector_config ``pixel1``/``pixel2``, or PixelSize1/2 in
    version 1); Rot1-3 default to 0 and Wavelength may be missing. Detector orientations other
    than 3 and versions above 3 are refused.
    """
    entries = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        entries[key.strip().lower()] = value.strip()
    if not entries:
        raise BadInput(f"{source}: not a PONI file (no 'key: value' line); expected pyFAI's "
                       "Distance, Poni1, Poni2, Rot1-3, Detector_config, Wavelength")
    version = _number(entries.get("poni_version", "1"), "poni_version", source)
    if version not in SUPPORTED_VERSIONS:
        raise BadInput(f"{source}: poni_version {entries['poni_version']} is not supported; "
                       f"expected one of {', '.join(f'{v:g}' for v in SUPPORTED_VERSIONS)}")
    missing = [SPELLING[k] for k in ("distance", "poni1", "poni2") if k not in entries]
    if missing:
        raise BadInput(f"{source}: missing {', '.join(missing)} (required: Distance, Poni1, Poni2 "
                       "in metres)")
    numbers = {k: _number(entries.get(k, "0"), k, source) for k in NUMBER_KEYS}
    _positive(numbers["distance"], "Distance", source)
    wavelength = entries.get("wavelength")
    if wavelength is not None and wavelength.lower() not in ("", "none", "null"):
        wavelength = _positive(_number(wavelength, "wavelength", source), "Wavelength", source)
    else:
        wavelength = None
    config = {}
    if "detector_config" in entries:
        try:
            config = json.loads(entries["detector_config"] or "{}")
        except ValueError as exc:
            raise BadInput(f"{source}: Detector_config is not a JSON object ({exc}); found "
                           f"{entries['detector_config']!r}") from None
        if not isinstance(config, dict):
            raise BadInput(f"{source}: Detector_config must be a JSON object, found "
                           f"{entries['detector_config']!r}")
    detector = entries.get("detector", "Detector")
    pixels = []
    for axis in ("1", "2"):
        if f"pixel{axis}" in config:
            pixels.append(_positive(_number(config[f"pixel{axis}"], f"Detector_config pixel{axis}",
                                            source), f"Detector_config pixel{axis}", source))
        elif f"pixelsize{axis}" in entries:
            pixels.append(_positive(_number(entries[f"pixelsize{axis}"], f"pixelsize{axis}", source),
                                    f"PixelSize{axis}", source))
        else:
            raise BadInput(f"{source}: no pixel size along axis {axis}: expected pixel{axis} in "
                           f"Detector_config (found {entries.get('detector_config', 'none')!r}) or "
                           f"PixelSize{axis}; a named detector ({detector!r}) needs its pixel sizes "
                           "written out, as pyFAI does for 'Detector'")
    orientation = config.get("orientation", DEFAULT_ORIENTATION)
    if orientation != DEFAULT_ORIENTATION:
        raise BadInput(f"{source}: Detector_config orientation {orientation!r} is not supported; "
                       f"expected {DEFAULT_ORIENTATION} (pyFAI's default, pixel indices growing "
                       "with Poni1 and Poni2)")
    max_shape = config.get("max_shape")
    if max_shape is not None:
        if not (isinstance(max_shape, list) and len(max_shape) == 2
                and all(isinstance(n, int) and n > 0 for n in max_shape)):
            raise BadInput(f"{source}: Detector_config max_shape must be [rows, cols], found "
                           f"{max_shape!r}")
        max_shape = tuple(max_shape)
    parallax = entries.get("parallax")
    if parallax is not None:
        parallax = parallax.lower() == "true"
    return Poni(numbers["distance"], numbers["poni1"], numbers["poni2"], numbers["rot1"],
                numbers["rot2"], numbers["rot3"], wavelength, pixels[0], pixels[1], detector,
                max_shape, version, parallax, source)


def read_poni(path, fs=None):
    """Read a PONI file (path or fsspec URL; ``fs`` to read ``path`` on that filesystem)."""
    if fs is None:
        fs, path = fsspec.core.url_to_fs(os.fspath(path))
    try:
        payload = fs.cat_file(path)
    except FileNotFoundError:
        raise BadInput(f"PONI file {path} does not exist") from None
    except IsADirectoryError:
        raise BadInput(f"PONI file {path} is a folder; expected a .poni file") from None
    except OSError as exc:
        raise BadInput(f"PONI file {path} cannot be read ({exc})") from None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a text file; expected a pyFAI .poni file") from None
    return parse_poni(text, str(path))


def _repr(value):
    """12 significant digits: 0.1002, not 0.10020000000000001 from 100.2 mm / 1000."""
    return repr(float(f"{float(value):.12g}"))


def format_poni(poni, comment=""):
    """PONI version 2.1 text of a :class:`Poni` (pyFAI's key order); ``comment``: extra ``#``
    lines at the top."""
    config = {"pixel1": poni.pixel1_m, "pixel2": poni.pixel2_m, "orientation": DEFAULT_ORIENTATION}
    if poni.max_shape is not None:
        config["max_shape"] = [int(n) for n in poni.max_shape]
    lines = ["# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis"]
    lines += [f"# {line}" for line in comment.splitlines()]
    lines += ["poni_version: 2.1", "Detector: Detector", f"Detector_config: {json.dumps(config)}",
              f"Distance: {_repr(poni.distance_m)}", f"Poni1: {_repr(poni.poni1_m)}",
              f"Poni2: {_repr(poni.poni2_m)}", f"Rot1: {_repr(poni.rot1)}",
              f"Rot2: {_repr(poni.rot2)}", f"Rot3: {_repr(poni.rot3)}"]
    if poni.wavelength_m is not None:
        lines.append(f"Wavelength: {_repr(poni.wavelength_m)}")
    return "\n".join(lines) + "\n"


def write_poni(poni, path, *, overwrite=False, comment="", fs=None):
    """Write :func:`format_poni` text to ``path`` (path or fsspec URL) through a temporary file
    renamed into place; an existing file raises unless ``overwrite=True``. Returns the path."""
    if fs is None:
        fs, path = fsspec.core.url_to_fs(os.fspath(path))
    if fs.exists(path) and not overwrite:
        raise BadInput(f"PONI file {path} exists; pass overwrite=True (--overwrite) to replace it")
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        fs.pipe_file(temporary, format_poni(poni, comment).encode("utf-8"))
        fs.mv(temporary, path)
    except FileNotFoundError:
        raise BadInput(f"cannot write PONI file {path}: its folder does not exist") from None
    finally:
        if fs.exists(temporary):
            fs.rm(temporary)
    return path


def beam_centre(poni):
    """(x, y) of the direct beam in the library's pixel coordinates (column, row; pixel centres
    at integers) for pyFAI's flat detector with tilts rot1, rot2 (rot3 turns about the beam and
    does not move it). Without tilts this is (Poni2 / pixel2 - 0.5, Poni1 / pixel1 - 0.5)."""
    c1 = math.cos(poni.rot1)
    x = (poni.poni2_m - poni.distance_m * math.tan(poni.rot1)) / poni.pixel2_m
    y = (poni.poni1_m + poni.distance_m * math.tan(poni.rot2) / c1) / poni.pixel1_m
    return x - 0.5, y - 0.5


def poni_for_centre(centre, distance_m, rot1, rot2, pixel1_m, pixel2_m):
    """(Poni1, Poni2) in metres that put the direct beam at ``centre`` = (x, y) px; the inverse
    of :func:`beam_centre`."""
    x, y = (float(c) + 0.5 for c in centre)
    poni2 = x * pixel2_m + distance_m * math.tan(rot1)
    poni1 = y * pixel1_m - distance_m * math.tan(rot2) / math.cos(rot1)
    return poni1, poni2
