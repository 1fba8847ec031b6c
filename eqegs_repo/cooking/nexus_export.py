"""Results as NeXus/HDF5 files: one ``.nxs`` per sample (:func:`export_nexus`,
``sample.export_nexus``, ``eqegs cook --nexus``) and one per reanalysis table
(:func:`table_to_nexus`, ``reanalyze(nexus=...)``, ``eqegs reanalyze --nexus``).

A sample's file holds one ``NXentry`` (docs/outputs.md#nexus-files has the whole tree):

* I(q) laid out as pyFAI's and MAX IV's ``NXazint1d`` where it applies: ``instrument``
  (``NXinstrument`` with ``source``, ``monochromator`` (energy, wavelength) and ``detector``
  (distance, pixel size, beam centre)), ``reduction`` (``NXprocess`` of the q integration with
  its ``input`` ``NXparameters``) and ``data`` (``NXdata``: ``I`` on the radial axis ``q`` in
  1/nm, with ``I_errors``); ``frames`` holds I(frame, q) (counts) with its Poisson errors;
* ``isf`` (``NXdata``: F(q,t) on ``t`` in ns, ``isf_errors``, the fitted curve ``isf_fit``),
  ``spectra`` (the quasi-elastic and forward absorption on ``energy`` in neV) and ``fit``
  (``NXprocess``: the model as an ``NXnote``, tau, f_q, beta with errors, chi2_red and the q of
  the result: ``q_weighted``, the intensity-weighted mean q of the pixels used,
  ``q_pixel_min``/``q_pixel_max`` their extreme q and ``q_min``/``q_max`` the requested range,
  1/nm);
* provenance: one ``NXprocess`` per step (``reconstruction``, ``reduction`` for the q
  integration, ``e_spectrum_and_isf``) with the program, version, date, the step's fingerprint
  (an ``NXnote``),
  one ``NXparameters`` per spice type it reads (fields with the schema's units) and
  ``NXnote`` groups of JSON: every parameter value, the spice records used (scope, anchor, uuid,
  revision) and the overrides; ``reconstruction/input`` names the raw files read (path, size,
  modification time).

This module builds the tree from the cooked datasets; :mod:`eqegs_repo.io.nexus` writes it.
"""
import datetime
import json
import os

import numpy as np

from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.errors import BadInput
from eqegs_repo.io.layout import is_local
from eqegs_repo.io.nexus import Field, Group, check_writable, local_path, write_nexus
from eqegs_repo.kernels.e_spectrum.range_q import RangeQ
from eqegs_repo.kernels.physics import PIXEL_SIZE_MM
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.params.types import SCHEMAS
from eqegs_repo.step_table import chain, get
from eqegs_repo.version import __version__

PROGRAM = "eqegs_repo"
UNIT_NAMES = {"nm^-1": "1/nm", "": "1"}
"""The dataset units written otherwise in NeXus: q in ``1/nm``; an empty unit is ``1``."""
PROCESS_NAMES = {"q_integration": "reduction"}
"""The NXprocess of a step is named after it; the q integration's is ``reduction``, as in NXazint1d."""
SOURCE = {"name": "SPring-8 BL35XU", "type": "Synchrotron X-ray Source", "probe": "x-ray"}


def nexus_units(units):
    """The NeXus spelling of a dataset's ``units`` (:data:`UNIT_NAMES`)."""
    return UNIT_NAMES.get(units, units)


def _field(variable, **attrs):
    """A :class:`Field` of an xarray variable, with its units and long_name."""
    values = np.asarray(variable.values)
    if values.dtype == bool:
        values = values.astype(np.int8)
    extra = {"long_name": variable.attrs["long_name"]} if "long_name" in variable.attrs else {}
    return Field(values, nexus_units(variable.attrs.get("units", "")), {**extra, **attrs})


def _text_note(text, description, kind="text/plain"):
    """An NXnote holding ``text`` (its ``data``) of MIME type ``kind``."""
    return Group("NXnote", {"type": Field(kind), "description": Field(description), "data": Field(text)})


def _json_note(payload, description):
    """An NXnote holding ``payload`` as JSON text."""
    return _text_note(json.dumps(payload, sort_keys=True, default=str), description, "application/json")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _parameters_group(type_name, values):
    """One NXparameters of a spice type's values: numbers (with the schema's units), flags,
    texts and lists of numbers; None, nested values and numbers of a field no schema of
    :data:`~eqegs_repo.params.types.SCHEMAS` declares (no unit known) only in the JSON note."""
    schema = next((s for s in SCHEMAS if s.name == type_name), None)
    units = {} if schema is None else {f.name: f.unit for f in schema.fields}
    fields = {}
    for name, value in values.items():
        unit = units.get(name)
        if isinstance(value, str):
            fields[name] = Field(value)
        elif unit is None:
            continue
        elif isinstance(value, (bool, int, float)) or (
                isinstance(value, (list, tuple)) and value and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            fields[name] = Field(np.asarray(value), nexus_units(unit))
    return Group("NXparameters", fields)


def _process(step, sequence_index, ds, date):
    """The NXprocess of ``step`` from its cooked dataset's provenance attrs."""
    types = get(step).spice_types
    attrs = ds.attrs
    children = {"program": Field(PROGRAM), "version": Field(attrs.get("library_version", __version__)),
                "date": Field(date), "sequence_index": Field(np.int64(sequence_index), "1"),
                "fingerprint": _text_note(attrs["fingerprint"], f"the fingerprint of step {step}: SHA-256 of "
                                          "its inputs, as in info.json and the result cache")}
    for type_name in types:
        children[type_name] = _parameters_group(type_name, attrs["parameters"].get(type_name, {}))
    children["parameters"] = _json_note({t: attrs["parameters"].get(t) for t in types},
                                        f"every value of the spice types {', '.join(types)}")
    children["spice_records"] = _json_note({t: attrs["spice"].get(t, []) for t in types},
                                           "the spice records used: scope, anchor, uuid, revision")
    children["overrides"] = _json_note({t: v for t, v in attrs.get("overrides", {}).items() if t in types},
                                       "one-off values given to the cook (no spice record)")
    return Group("NXprocess", children)


def _input_group(run, provenance):
    """The raw files a cook read (``Cooker.run.stats``: path, size, mtime) and its input kind."""
    stats = run.stats
    return Group("NXcollection", {
        "kind": Field(provenance.get("kind", "raw")), "format": Field(str(provenance.get("format", ""))),
        "files": Field([str(path) for path, _, _ in stats] or [""]),
        "sizes": Field(np.asarray([int(size) for _, size, _ in stats] or [0], dtype=np.int64), "B"),
        "mtimes": Field([str(mtime) for _, _, mtime in stats] or [""]),
        "description": Field(json.dumps(provenance, sort_keys=True, default=str))})


def _instrument(parameters, qds):
    geometry = parameters["geometry"]
    pixel = float(geometry.get("pixel_size_mm", PIXEL_SIZE_MM))
    return Group("NXinstrument", {
        "name": Field(SOURCE["name"]),
        "source": Group("NXsource", {key: Field(value) for key, value in SOURCE.items()}),
        "monochromator": Group("NXmonochromator", {
            "energy": Field(np.float64(geometry["energy_keV"]), "keV"),
            "wavelength": Field(np.float64(geometry["wavelength_nm"]), "nm")}),
        "detector": Group("NXdetector", {
            "distance": Field(np.float64(geometry["distance_mm"]), "mm"),
            "x_pixel_size": Field(np.float64(pixel), "mm"),
            "y_pixel_size": Field(np.float64(pixel), "mm"),
            "beam_center_x": Field(np.float64(qds.attrs["centre_x"] * pixel), "mm",
                                   {"pixel": float(qds.attrs["centre_x"])}),
            "beam_center_y": Field(np.float64(qds.attrs["centre_y"] * pixel), "mm",
                                   {"pixel": float(qds.attrs["centre_y"])})})})


def _reduction_inputs(qds):
    """The NXparameters ``input`` of the q integration: what the NXazint1d ``reduction`` names
    (bins, radial unit) and what this integration found (centre, pixels, background)."""
    background = qds.attrs.get("background") or {}
    fields = {"n_radial_bins": Field(np.int64(qds.sizes["q"]), "1"), "radial_axis": Field("q"),
              "radial_unit": Field("1/nm"),
              "beam_centre_x": Field(np.float64(qds.attrs["centre_x"]), "px"),
              "beam_centre_y": Field(np.float64(qds.attrs["centre_y"]), "px"),
              "n_pixels_used": Field(np.int64(qds.attrs["n_pixels_used"]), "px"),
              "n_dead_pixels": Field(np.int64(qds.attrs["n_dead_pixels"]), "px"),
              "background_sample": Field(str(background.get("sample") or ""))}
    if background.get("k") is not None:
        fields["background_scale"] = Field(np.float64(background["k"]), "1")
    return Group("NXparameters", fields)


def _q_data(qds):
    """``data``: I(q) per pixel (frame-summed), the NXazint1d signal; ``frames``: I(frame, q)."""
    data = Group("NXdata", {
        "I": _field(qds["profile"]), "I_errors": _field(qds["profile_sigma"]), "q": _field(qds["q"]),
        "q_mean": _field(qds["q_mean"]), "two_theta": _field(qds["two_theta"]), "npix": _field(qds["npix"])},
        {"signal": "I", "axes": ["q"], "q_indices": 0, "title": "I(q), frame-summed, per pixel"})
    frames = Group("NXdata", {
        "I": _field(qds["intensity"]),
        "I_errors": Field(np.sqrt(np.clip(qds["variance"].values, 0, None)), "counts"),
        "frame": _field(qds["frame"]), "q": _field(qds["q"])},
        {"signal": "I", "axes": ["frame", "q"], "frame_indices": 0, "q_indices": 1,
         "title": "I(frame, q), background-subtracted counts"})
    return data, frames


def _isf_groups(eds):
    isf = {"isf": _field(eds["isf"]), "isf_errors": _field(eds["isf_sigma"]), "t": _field(eds["t"]),
           "accepted": _field(eds["accepted"])}
    attrs = {"signal": "isf", "axes": ["t"], "t_indices": 0,
             "title": f"F(q,t), weighted q {eds.attrs['q_weighted']:.4g} 1/nm "
                      f"(requested {eds.attrs['q_min']:g}..{eds.attrs['q_max']:g} 1/nm)"}
    if "isf_fit" in eds:
        isf["isf_fit"] = _field(eds["isf_fit"])
        attrs["auxiliary_signals"] = ["isf_fit"]
    spectra = Group("NXdata", {
        "qe_absorption": _field(eds["qe_absorption"]), "qe_absorption_errors": _field(eds["qe_absorption_sigma"]),
        "forward_absorption": _field(eds["forward_absorption"]),
        "forward_absorption_errors": _field(eds["forward_absorption_sigma"]), "energy": _field(eds["energy"])},
        {"signal": "qe_absorption", "axes": ["energy"], "energy_indices": 0,
         "auxiliary_signals": ["forward_absorption"], "title": "absorption spectra (quasi-elastic, forward)"})
    fit = eds.attrs.get("fit")
    results = {name: Field(np.float64(eds.attrs[name]), "1/nm", {"long_name": RangeQ.LONG_NAMES[name]})
               for name in RangeQ.NAMES}
    if fit is not None:
        for name in ("tau", "f_q", "beta"):
            results[name] = _field(eds[name])
            results[f"{name}_errors"] = _field(eds[f"{name}_error"])
        results["chi2_red"] = _field(eds["chi2_red"])
        results["n_points"] = Field(np.int64(fit["n_points"]), "1")
        covariance = np.asarray(fit["covariance"], dtype=float)
        names = ["f_q", "tau", "beta"][:covariance.shape[0]]
        results["covariance"] = Field(covariance, "", {  # mixed units: one per parameter
            "description": "covariance of the fitted parameters", "parameters": names,
            "parameter_units": ["1", "ns", "1"][:len(names)]})
    model = "none" if fit is None else fit["model"]
    fit_group = Group("NXprocess", {
        "program": Field(PROGRAM), "version": Field(__version__),
        "model": _text_note(model, "fit model (exp: beta = 1; kww: beta free; none: no fit) of "
                                   "F(q,t) = f_q exp(-(t/tau)^beta)"),
        "results": Group("NXparameters", results)})
    return Group("NXdata", isf, attrs), spectra, fit_group


def sample_entry(datasets, run):
    """The NXentry of one sample from its cooked ``datasets`` (step -> dataset, the three
    built-in steps) and ``run`` (the Cooker's input run, for the raw files' stats)."""
    rec, qds, eds = (datasets[s] for s in ("reconstruction", "q_integration", "e_spectrum_and_isf"))
    date = _now()
    data, frames = _q_data(qds)
    isf, spectra, fit = _isf_groups(eds)
    children = {
        "title": Field(f"{eds.attrs['proposal']}/{eds.attrs['sample']}: I(q), ISF and fit"),
        "experiment_identifier": Field(eds.attrs["proposal"]),
        "program_name": Field(PROGRAM, attrs={"version": __version__}),
        "sample": Group("NXsample", {"name": Field(eds.attrs["sample"])}),
        "instrument": _instrument(eds.attrs["parameters"], qds),
        "data": data, "frames": frames, "isf": isf, "spectra": spectra, "fit": fit,
    }
    for index, step in enumerate(chain("e_spectrum_and_isf"), start=1):
        children[PROCESS_NAMES.get(step, step)] = _process(step, index, datasets[step], date)
    children["reconstruction"].children["input"] = _input_group(run, rec.attrs.get("input", {}))
    children["reduction"].children["input"] = _reduction_inputs(qds)
    return Group("NXentry", children, {"default": "isf"})


def default_path(sample):
    """``<sample folder>/<sample>.nxs`` when the sample folder is local, else BadInput."""
    if not is_local(sample.fs):
        raise BadInput(f"{sample.proposal.key}/{sample.key}: its folder {sample.path} is not local; "
                       "give the NeXus file's path (path=..., -o PATH)")
    return os.path.join(sample.path, f"{sample.key}.nxs")


def export_nexus(sample, path=None, *, overwrite=False, use_cache=True, **overrides):
    """Write ``sample``'s I(q), ISF, fit and provenance as one NeXus/HDF5 file at ``path``
    (default :func:`default_path`); returns the path. The steps are cooked (or taken from the
    cache) with ``overrides`` as for ``sample.cook``. An existing file raises
    :class:`~eqegs_repo.errors.ResultExists` unless ``overwrite``; the file appears only when
    complete (:func:`eqegs_repo.io.nexus.write_nexus`)."""
    path = local_path(default_path(sample) if path is None else path)
    check_writable(path, overwrite)  # before cooking: never minutes of work for nothing
    label = f"{sample.proposal.key}/{sample.key}"
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=label)
    cooker = Cooker(sample, params, use_cache=use_cache)
    datasets = {step: cooker.dataset(step) for step in chain("e_spectrum_and_isf")}
    return write_nexus(path, {"entry": sample_entry(datasets, cooker.run)}, overwrite=overwrite,
                       creator=f"{PROGRAM} {__version__}")


TABLE_UNITS = {"duration_s": "s", "f_q": "1", "f_q_error": "1", "tau_ns": "ns", "tau_error_ns": "ns",
               "beta": "1", "beta_error": "1", "chi2_red": "1", "centre_x": "px", "centre_y": "px",
               **{name: "1/nm" for name in RangeQ.NAMES}}
"""Units of the reanalysis table's numeric columns (:data:`eqegs_repo.batch.COLUMNS`); a column
not named here takes its unit from its name's end (``_ns``, ``_s``, ``_nm^-1``, ``_K``) or is
written with empty units (and listed in the attribute ``columns_without_units`` of ``columns``)."""
_SUFFIX_UNITS = (("_nm^-1", "1/nm"), ("_ns", "ns"), ("_s", "s"), ("_K", "K"))


def _column_units(name):
    if name in TABLE_UNITS:
        return TABLE_UNITS[name]
    return next((unit for suffix, unit in _SUFFIX_UNITS if name.endswith(suffix)), None)


def _column_field(values):
    """A numeric column as float64 (None as NaN), anything else as texts (None as "")."""
    present = [v for v in values if v is not None and v == v]
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
           for v in present):
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]


def table_entry(table):
    """The NXentry of a reanalysis table (a pandas.DataFrame): ``results`` (NXdata: tau_ns with
    tau_ns_errors and f_q with f_q_errors over the row index, proposal and sample as texts) and
    ``columns`` (NXcollection: every column, numbers as float64 with NaN, texts as UTF-8)."""
    if len(table) == 0:
        raise BadInput("the reanalysis table has no rows: nothing to write as NeXus")
    columns, no_units = {}, []
    for name in table.columns:
        values = _column_field(table[name].tolist())
        if isinstance(values, list):
            columns[name] = Field(values)
            continue
        units = _column_units(name)
        if units is None:
            no_units.append(name)
        columns[name] = Field(values, "" if units is None else units)
    row = Field(np.arange(len(table), dtype=np.int64), "1")
    results = {"row": row}
    for name, error in (("tau_ns", "tau_error_ns"), ("f_q", "f_q_error")):
        if name in columns and error in columns and not columns[name].is_text:
            results[name] = columns[name]
            results[f"{name}_errors"] = columns[error]
    for name in ("proposal", "sample", "status"):
        if name in columns:
            results[name] = columns[name]
    signal = "tau_ns" if "tau_ns" in results else None
    attrs = {"axes": ["row"], "row_indices": 0, "title": "reanalysis: tau and f_q per sample"}
    if signal is not None:
        attrs.update(signal=signal, auxiliary_signals=["f_q"] if "f_q" in results else [])
        if not attrs["auxiliary_signals"]:
            del attrs["auxiliary_signals"]
    children = {"title": Field(f"reanalysis of {len(table)} sample(s)"),
                "program_name": Field(PROGRAM, attrs={"version": __version__}),
                "results": Group("NXdata", results, attrs),
                "columns": Group("NXcollection", columns, {"columns_without_units": no_units} if no_units else {})}
    return Group("NXentry", children, {"default": "results"})


def table_to_nexus(table, path, *, overwrite=False):
    """Write a reanalysis table (``repo.reanalyze(...)``'s DataFrame) as one NeXus/HDF5 file at
    ``path`` (:func:`table_entry`); returns the path. An existing file raises unless
    ``overwrite``."""
    return write_nexus(path, {"entry": table_entry(table)}, overwrite=overwrite, creator=f"{PROGRAM} {__version__}")
