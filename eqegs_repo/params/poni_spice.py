"""The geometry spice of a pyFAI ``.poni`` file, and a ``.poni`` of geometry spice.

:func:`import_poni` turns a PONI file (:mod:`eqegs_repo.io.poni_file`) into a ``geometry`` record
(distance_mm, wavelength_nm and energy_keV, pixel_size_mm, tilt_rot1, tilt_rot2) and a
``q_integration`` record holding the beam centre (centre_method ``manual``, centre_x, centre_y
in px) at one anchor; :func:`poni_of` gives the :class:`~eqegs_repo.io.poni_file.Poni` of geometry
values and a beam centre. See docs/spice.md#pyfai-poni-files.

Choices: tilts (Rot1, Rot2) are imported as they are and the report says that cooking refuses
tilted detectors today; a non-zero Rot3 (a turn about the beam, which moves the azimuth of
the sectors and has no geometry field) and non-square pixels are refused.
"""
import dataclasses
import math

from eqegs_repo.errors import BadInput
from eqegs_repo.io.poni_file import Poni, beam_centre, poni_for_centre, read_poni
from eqegs_repo.kernels.physics import HC_KEV_NM
from eqegs_repo.params import types as params
from spice import SpiceError
from spice.display import text_table

SQUARE_PIXELS_RTOL = 1e-6


def _round(value):
    """12 significant digits: metres -> mm without 100.00000000000001."""
    return float(f"{value:.12g}")


@dataclasses.dataclass
class PoniValues:
    """What a PONI file gives: ``{type: {field: value}}`` to write, and notes for the user."""

    source: str
    values: dict
    notes: list


def values_from_poni(poni, centre=True):
    """``PoniValues`` of a :class:`~eqegs_repo.io.poni_file.Poni`: the ``geometry`` fields and, with
    ``centre``, the ``q_integration`` beam centre (manual). Raises BadInput naming the file and
    the key for what the geometry type cannot hold (Rot3, non-square pixels, out-of-range
    values)."""
    source = poni.source or "<poni>"
    if not math.isclose(poni.pixel1_m, poni.pixel2_m, rel_tol=SQUARE_PIXELS_RTOL):
        raise BadInput(f"{source}: Detector_config pixel1 = {poni.pixel1_m} m and pixel2 = "
                       f"{poni.pixel2_m} m differ; the geometry type has one pixel_size_mm "
                       "(square pixels)")
    if poni.rot3 != 0:
        raise BadInput(f"{source}: Rot3 = {poni.rot3} rad: a turn of the detector about the beam "
                       "has no geometry field (it moves the azimuth of the angle sectors); refit "
                       "with rot3 fixed at 0, or set Rot3: 0 in the file if the sectors do not "
                       "matter")
    geometry = {"distance_mm": _round(poni.distance_m * 1e3),
                "pixel_size_mm": _round(poni.pixel1_m * 1e3),
                "tilt_rot1": float(poni.rot1), "tilt_rot2": float(poni.rot2)}
    notes = []
    if poni.wavelength_m is not None:
        geometry["wavelength_nm"] = _round(poni.wavelength_m * 1e9)
        geometry["energy_keV"] = _round(HC_KEV_NM / geometry["wavelength_nm"])
    else:
        notes.append("no Wavelength in the file: wavelength_nm and energy_keV are left as they are")
    if poni.rot1 or poni.rot2:
        notes.append(f"tilts imported (tilt_rot1 = {poni.rot1:g}, tilt_rot2 = {poni.rot2:g} rad): "
                     "cooking refuses tilted detectors today; set them to 0 (spice update "
                     "geometry tilt_rot1=0 tilt_rot2=0) to cook with a flat detector normal to "
                     "the beam")
    if poni.parallax:
        notes.append("Parallax: True is not applied: the library has no parallax correction")
    values = {"geometry": geometry}
    if centre:
        x, y = beam_centre(poni)
        values["q_integration"] = {"centre_method": "manual", "centre_x": _round(x),
                                   "centre_y": _round(y)}
    for type_name, fields in values.items():
        try:
            params.REGISTRY.validate(type_name, fields)
        except SpiceError as exc:
            raise BadInput(f"{source}: {exc}") from None
    return PoniValues(source, values, notes)


@dataclasses.dataclass
class PoniImport:
    """What :func:`import_poni` did: ``values`` per type, ``written`` records (None on a dry
    run), ``unchanged`` types already holding these values at the anchor, and ``notes``."""

    source: str
    anchor: str
    values: dict
    written: dict
    unchanged: list
    notes: list
    dry_run: bool = False

    def rows(self):
        """(type, field, value, outcome) per imported field."""
        out = []
        for type_name, fields in self.values.items():
            if type_name in self.unchanged:
                outcome = "unchanged"
            elif self.dry_run:
                outcome = "would write"
            else:
                record = self.written[type_name]
                outcome = f"written r{record.revision} {record.uuid[:8]}"
            out += [(type_name, field, repr(value), outcome) for field, value in fields.items()]
        return out

    def __repr__(self):
        table = text_table(("type", "field", "value", "outcome"), self.rows())
        notes = "".join(f"\n! {note}" for note in self.notes)
        return f"PONI file {self.source} at anchor {self.anchor!r}:\n{table}{notes}"


def import_poni(collection, path, anchor="", *, centre=True, dry_run=False, author=None,
                comment=None, fs=None):
    """Write the geometry (and, with ``centre``, the beam centre) of a PONI file as records at
    ``anchor`` of a spice collection; returns a :class:`PoniImport`.

    Every value is checked before anything is written. A type whose resolved record at
    ``anchor`` (written at that anchor) already holds the same values is left alone, so
    importing twice writes nothing new.
    """
    poni = read_poni(path, fs=fs)
    found = values_from_poni(poni, centre=centre)
    report = PoniImport(found.source, anchor, found.values, {}, [], found.notes, dry_run)
    index = collection.index()
    for type_name, fields in found.values.items():
        current = index.resolve(type_name, anchor)
        record = current.record
        if (not current.conflicted and record is not None and record.anchor == anchor
                and all((record.data or {}).get(k) == v for k, v in fields.items())):
            report.unchanged.append(type_name)
            continue
        if not dry_run:
            report.written[type_name] = collection.update(
                type_name, anchor, author=author, comment=comment or f"pyFAI PONI {found.source}",
                **fields)
    return report


def poni_of(geometry, centre, max_shape=None, source=""):
    """The :class:`~eqegs_repo.io.poni_file.Poni` of ``geometry`` values (a ``geometry`` record's
    fields) and a beam ``centre`` (x, y) px; ``max_shape``: (rows, cols) of the image."""
    distance_m = geometry["distance_mm"] * 1e-3
    pixel_m = geometry["pixel_size_mm"] * 1e-3
    rot1, rot2 = geometry.get("tilt_rot1") or 0.0, geometry.get("tilt_rot2") or 0.0
    poni1, poni2 = poni_for_centre(centre, distance_m, rot1, rot2, pixel_m, pixel_m)
    wavelength = geometry.get("wavelength_nm")
    return Poni(distance_m, poni1, poni2, rot1, rot2, 0.0,
                None if wavelength is None else wavelength * 1e-9, pixel_m, pixel_m,
                max_shape=None if max_shape is None else tuple(max_shape), source=source)
