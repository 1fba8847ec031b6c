"""The E-QEGS parameter types of spice: schemas with units, ranges and defaults
(docs/physics.md#parameters).

Each type is a :class:`spice.TypeSchema`; :data:`REGISTRY` holds them all (strict: records of
other types are refused). Type names and what they cover:

============================  ================================================================
``sensor_layout``             SensorLayout: how the sensors tile/sum onto the image canvas
``roi``                       ReconstructionParams, ROI part: manual corners or auto ROI settings
``reconstruction``            ReconstructionParams, the rest (output dtype)
``geometry``                  Geometry: energy, wavelength, pixel size, distance, tilts
``q_integration``             QIntegrationParams incl. background sample and angle sectors
``sp_param``                  SpParam (the app's ``sp_param.json``): START_CUT_FRAMES
``calibration``               the calibration numbers of a sample (data_table.csv), the
                              calibration folder and the SHA-256 of each of its files
``velocity_calibration``      built-in VelocityCalibration kinds (triangle/sine/poly/table)
``angle_calibration``         built-in AngleCalibration kinds (none/cos2theta/table)
``q_range``                   q_min, q_max of the E spectrum (nm^-1)
``e_spectrum``                ESpectrumParams without the q range
``conditions``                the sample's conditions: temperature and pressure with their
                              units, free fields (:mod:`eqegs_repo.params.conditions`)
============================  ================================================================

Use :func:`defaults` for ``{type: {field: default}}``, :func:`units` for ``{type: {field:
unit}}`` and :func:`schema_rows` for documentation tables.
"""
import math
import re

from eqegs_repo.kernels import rules
from eqegs_repo.kernels.e_spectrum import checks
from eqegs_repo.kernels.physics import HC_KEV_NM
from spice import Field, Registry, TypeSchema

SUBDIR_PATTERN = r"[0-9A-Za-z_]{0,100}"
"""Sub-folder names: letters, digits and ``_``, at most 100 characters (the zip name holds two)."""
MAX_PX = 1 << 16
"""Largest image size, position or distance in pixels a parameter may give (65536 px)."""
MAX_FRAMES = 1 << 24
"""Largest frame count or frame position a parameter may give."""
MAX_NUMBER = 1e6
"""Bound of coefficients and tables that have no physical range of their own."""


# --- cross-field rules (module-level so that the registry pickles) ---------------------------
def _same_length(data, count_field, list_fields):
    messages = []
    count = data.get(count_field)
    for name in list_fields:
        if count is not None and name in data and len(data[name]) != count:
            messages.append(f"{name} lists {len(data[name])} entries but {count_field} = {count}; "
                            f"give one entry per sensor")
    return messages


def check_sensor_layout(data):
    """offsets and flips have one entry per sensor."""
    return _same_length(data, "n_sensors", ("offsets", "flips"))


def check_roi(data):
    """Manual ROI corners are all set or all null (auto); set corners follow
    :func:`eqegs_repo.kernels.rules.roi_problems` (x0 <= x1 and y0 <= y1, inclusive px)."""
    corners = [name for name in ("x0", "y0", "x1", "y1") if name in data]
    if not corners:
        return []
    values = [data[name] for name in corners]
    if len(corners) < 4 or (None in values and any(v is not None for v in values)):
        return [f"a manual ROI needs all four corners x0, y0, x1, y1 (inclusive px), or all "
                f"null for the auto ROI; found {dict(zip(corners, values))}"]
    if values[0] is None:
        return []
    return rules.roi_problems(data["x0"], data["y0"], data["x1"], data["y1"])


def check_geometry(data):
    """energy_keV and wavelength_nm agree (lambda = hc / E) within 0.1 % when both are given."""
    energy, wavelength = data.get("energy_keV"), data.get("wavelength_nm")
    if energy is None or wavelength is None:
        return []
    expected = HC_KEV_NM / energy
    if not math.isclose(wavelength, expected, rel_tol=1e-3):
        return [f"wavelength_nm = {wavelength} does not match energy_keV = {energy} "
                f"(expected {expected:.6f} nm = 1.239842 / energy_keV); change both together"]
    return []


def check_q_integration(data):
    """A manual centre needs centre_x/centre_y; angle_mode specify needs sectors."""
    messages = []
    if data.get("centre_method") == "manual" and ("centre_x" in data or "centre_y" in data):
        if data.get("centre_x") is None or data.get("centre_y") is None:
            messages.append("centre_method manual needs both centre_x and centre_y (px)")
    if data.get("angle_mode") == "specify" and "sectors" in data and not data["sectors"]:
        messages.append("angle_mode specify needs at least one sector [start_deg, end_deg]")
    return messages


def check_q_range(data):
    """When both ends are set, :func:`eqegs_repo.kernels.rules.q_range_problems` (q_min < q_max);
    an unset end is allowed in a record and refused where the range is used."""
    q_min, q_max = data.get("q_min"), data.get("q_max")
    if q_min is None or q_max is None:
        return []
    return rules.q_range_problems(q_min, q_max)


def check_velocity_calibration(data):
    """kind poly needs poly_coeffs, kind table needs table_mm_s."""
    kind = data.get("kind")
    if kind == "poly" and "poly_coeffs" in data and not data["poly_coeffs"]:
        return ["kind poly needs poly_coeffs (mm/s per power of the measured waveform)"]
    if kind == "table" and "table_mm_s" in data and not data["table_mm_s"]:
        return ["kind table needs table_mm_s (one velocity per frame, mm/s)"]
    return []


def check_angle_calibration(data):
    """kind table needs table."""
    if data.get("kind") == "table" and "table" in data and not data["table"]:
        return ["kind table needs table ([two_theta_deg, factor] pairs)"]
    return []


def check_calibration(data):
    """files maps file names to SHA-256 hex digests."""
    bad = {name: digest for name, digest in data.get("files", {}).items()
           if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest))}
    if bad:
        return [f"files must map each file name to its SHA-256 (64 lowercase hex digits); "
                f"found {bad}"]
    return []


MAX_CONDITION_FIELDS = 32
"""Most free fields of one ``conditions`` record."""
MAX_CONDITION_TEXT = 200
"""Longest text value of a free condition field (characters)."""
CONDITION_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
"""Names of free condition fields: a letter or ``_``, then letters, digits, ``_``; at most 64."""
CELSIUS_OFFSET_K = 273.15
"""0 °C in K."""


def check_conditions(data):
    """The temperature is above 0 K in its unit; the free fields are at most
    :data:`MAX_CONDITION_FIELDS` names matching :data:`CONDITION_NAME` whose values are finite
    numbers or text of at most :data:`MAX_CONDITION_TEXT` characters."""
    messages = []
    temperature, unit = data.get("temperature"), data.get("temperature_unit", "K")
    if temperature is not None:
        kelvin = temperature + (CELSIUS_OFFSET_K if unit == "C" else 0.0)
        if not kelvin > 0:
            shown = "" if unit == "K" else f" = {kelvin:g} K"
            messages.append(f"temperature = {temperature:g} {unit}{shown} is not allowed; allowed: "
                            f"above 0 K (temperature_unit K or C)")
    fields = data.get("fields", {})
    if len(fields) > MAX_CONDITION_FIELDS:
        messages.append(f"fields has {len(fields)} entries; allowed: at most {MAX_CONDITION_FIELDS}")
    for name, value in list(fields.items())[:MAX_CONDITION_FIELDS + 1]:
        if not re.fullmatch(CONDITION_NAME, name):
            messages.append(f"fields: name {name[:80]!r} is not allowed; allowed: {CONDITION_NAME}")
        elif isinstance(value, str):
            if len(value) > MAX_CONDITION_TEXT:
                messages.append(f"fields.{name}: text of {len(value)} characters; allowed: at most "
                                f"{MAX_CONDITION_TEXT}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            messages.append(f"fields.{name} = {str(value)[:80]!r} is not allowed; allowed: a finite "
                            f"number or text")
    return messages


# --- field helpers ---------------------------------------------------------------------------
def _pair(name, unit, default, doc, minimum=None, **extra):
    return Field(name, "list", unit, default, doc, length=2,
                 item=Field("item", "int", unit, minimum=minimum, maximum=MAX_PX), **extra)


def _subdir(name, doc):
    return Field(name, "str", "", "", doc + " (only 0-9, a-z, A-Z and _, at most 100; empty: none)",
                 pattern=SUBDIR_PATTERN)


SENSOR_LAYOUT = TypeSchema("sensor_layout", 1, (
    Field("n_sensors", "int", "", 3, "number of sensors [M]", minimum=1, maximum=256),
    _pair("sensor_shape", "px", [728, 128], "(rows, cols) of one sensor", minimum=1),
    Field("mode", "enum", "", "tile", "tile: distinct places, gaps stay 0; sum: overlay",
          choices=("tile", "sum")),
    Field("offsets", "list", "px", [[0, 0], [0, 128], [0, 256]],
          "(row, col) of each sensor's top-left corner on the canvas",
          item=Field("offset", "list", "px", length=2, item=Field("px", "int", minimum=0, maximum=MAX_PX))),
    Field("flips", "list", "", ["none", "none", "none"],
          "flip applied to each sensor before placing it",
          item=Field("flip", "enum", choices=("none", "ud", "lr", "rot180"))),
    _pair("canvas_shape", "px", [728, 384], "(rows, cols) of the combined image", minimum=1),
), "Placement of the sensors on the image canvas (docs/physics.md#reconstruction).",
    checks=(check_sensor_layout,))

ROI = TypeSchema("roi", 1, (
    Field("x0", "int", "px", None, "first column of a manual ROI (inclusive); null: auto ROI",
          minimum=0, maximum=MAX_PX, nullable=True),
    Field("y0", "int", "px", None, "first row of a manual ROI (inclusive); null: auto ROI",
          minimum=0, maximum=MAX_PX, nullable=True),
    Field("x1", "int", "px", None, "last column of a manual ROI (inclusive); null: auto ROI",
          minimum=0, maximum=MAX_PX, nullable=True),
    Field("y1", "int", "px", None, "last row of a manual ROI (inclusive); null: auto ROI",
          minimum=0, maximum=MAX_PX, nullable=True),
    _pair("auto_half_size", "px", [37, 24],
          "auto ROI half-sizes (x, y) around the maximum; (37, 24) gives the manual's 75 x 49",
          minimum=1),
    Field("median_prefilter", "int", "px", 3,
          "median filter size applied before the auto ROI looks for the maximum",
          minimum=1, maximum=99, odd=True),
), "Region of interest of the reconstruction (ReconstructionParams). The ROI is manual when "
   "x0, y0, x1, y1 are all set (inclusive corners, as in the app) and auto when all are null.",
    checks=(check_roi,))

RECONSTRUCTION = TypeSchema("reconstruction", 1, (
    Field("dtype_out", "enum", "", "float32", "dtype of an exported reconstruction stack",
          choices=("float32", "uint32")),
    Field("input", "enum", "", "auto",
          "where the reconstructed frames come from: raw (the raw data only), app_reconstruction (the "
          "app's reconstruction/reconstruction.npy only) or auto (the raw data; the app's stack when "
          "the raw data cannot be opened)",
          choices=("auto", "raw", "app_reconstruction")),
), "Reconstruction settings other than the ROI (ReconstructionParams).")

GEOMETRY = TypeSchema("geometry", 1, (
    Field("energy_keV", "float", "keV", 14.4125, "photon energy (57Fe resonance)",
          minimum=0, min_exclusive=True, maximum=1000),
    Field("wavelength_nm", "float", "nm", 0.086025,
          "wavelength used for q; must equal 1.239842 / energy_keV",
          minimum=0, min_exclusive=True, maximum=100),
    Field("pixel_size_mm", "float", "mm", 0.0726, "detector pixel pitch (CITIUS)",
          minimum=0, min_exclusive=True, maximum=100),
    Field("distance_mm", "float", "mm", 100.0, "sample-detector distance (unknown, check)",
          minimum=0, min_exclusive=True, maximum=1e5),
    Field("tilt_rot1", "float", "rad", 0.0, "detector tilt about the vertical axis (PONI rot1)",
          minimum=-math.pi / 4, maximum=math.pi / 4),
    Field("tilt_rot2", "float", "rad", 0.0, "detector tilt about the horizontal axis (rot2)",
          minimum=-math.pi / 4, maximum=math.pi / 4),
    Field("polarisation_factor", "float", "", None, "polarisation factor; null: no correction",
          minimum=-1, maximum=1, nullable=True),
), "Scattering geometry for pixel -> 2theta -> q.", checks=(check_geometry,))

Q_INTEGRATION = TypeSchema("q_integration", 1, (
    Field("centre_method", "enum", "", "centroid", "how the beam centre is found",
          choices=("centroid", "gauss2d", "manual")),
    Field("centre_x", "float", "px", None, "beam centre column for centre_method manual",
          minimum=-MAX_PX, maximum=MAX_PX, nullable=True),
    Field("centre_y", "float", "px", None, "beam centre row for centre_method manual",
          minimum=-MAX_PX, maximum=MAX_PX, nullable=True),
    Field("centroid_threshold_frac", "float", "", 0.1,
          "threshold of the centroid weights, as a fraction of their maximum", minimum=0, maximum=1,
          max_exclusive=True),
    Field("centroid_threshold_mode", "enum", "", "subtract",
          "subtract: the centroid weights are max(w - threshold, 0), continuous in the counts; "
          "cut: w above the threshold, 0 below (the app's, with centre_spike_factor null)",
          choices=("subtract", "cut")),
    Field("centre_iterations", "int", "", 2, "re-centre the ROI this many times", minimum=1,
          maximum=100),
    Field("centre_spike_factor", "float", "", 10.0,
          "before the centre is found, a pixel above this many times the largest of its 8 "
          "neighbours is clipped to that bound (a hot pixel in the ROI); null: no clipping, "
          "as the app (with centroid_threshold_mode cut)",
          minimum=1, min_exclusive=True, maximum=1e6, nullable=True),
    Field("forward_box_halfwidth", "int", "px", 20,
          "half-width of the box summed into the forward spectrum [M fig 04]", minimum=1,
          maximum=MAX_PX),
    Field("direct_exclusion_halfwidth", "int", "px", 50,
          "half-width of the masked direct-beam box [M fig 03]", minimum=0, maximum=MAX_PX),
    Field("bg_sample_id", "str", "", None,
          "key of the background sample in the same proposal; null: no subtraction",
          nullable=True),
    Field("bg_scale_mode", "enum", "", "forward_ratio", "how the background is scaled",
          choices=("unity", "forward_ratio", "manual")),
    Field("bg_scale", "float", "", 1.0, "background scale k for bg_scale_mode manual",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("angle_mode", "enum", "", "all", "all: every azimuth; specify: only the sectors [M]",
          choices=("all", "specify")),
    Field("sectors", "list", "deg", [],
          "[start, end] azimuth sectors, 0 deg = +x, clockwise; start > end wraps through 0",
          item=Field("sector", "list", "deg", length=2,
                     item=Field("deg", "float", "deg", minimum=0, maximum=360,
                                max_exclusive=True))),
    Field("radial_bin_px", "float", "px", 1.0, "radial bin width", minimum=0.01,
          maximum=MAX_PX),
    Field("pixel_splitting", "enum", "", "none", "none or bbox pixel splitting",
          choices=("none", "bbox")),
    Field("solid_angle_correction", "bool", "", False, "divide by the pixel solid angle"),
    Field("hot_pixel_mad", "float", "", 10.0,
          "mask pixels above median + this x MAD of the summed image; null: off",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER, nullable=True),
    _subdir("output_subdir", "sub-folder of q_integration/ for the results"),
), "Q integration: beam centre, forward spectrum, background subtraction, mask, binning.",
    checks=(check_q_integration,))

SP_PARAM = TypeSchema("sp_param", 1, (
    Field("start_cut_frames", "int", "frames", 5,
          "frames dropped at the start (START_CUT_FRAMES of sp_param.json) [M]", minimum=0,
          maximum=MAX_FRAMES),
), "The app's sp_param.json.")

CALIBRATION = TypeSchema("calibration", 1, (
    Field("velocity_number", "int", "", 1, "velocity calibration number (data_table.csv) [M]",
          minimum=0, maximum=MAX_NUMBER),
    Field("angle_number", "int", "", 0, "angle calibration number (data_table.csv) [M]",
          minimum=0, maximum=MAX_NUMBER),
    Field("folder", "str", "", None, "folder holding calibration_velocity.py, "
          "calibration_angle.py, sp_param.json (and data_table.csv); null: built-in kinds",
          nullable=True),
    Field("files", "mapping", "", {}, "SHA-256 (hex) of each file of the folder when recorded"),
    Field("note", "str", "", "", "comment of the data_table.csv row (no commas)"),
), "Which calibrations a sample uses, and the calibration folder with a hash of each file.",
    checks=(check_calibration,))

VELOCITY_CALIBRATION = TypeSchema("velocity_calibration", 1, (
    Field("number", "int", "", 1, "calibration number this record defines", minimum=0,
          maximum=MAX_NUMBER),
    Field("kind", "enum", "", "triangle", "waveform model", choices=(
        "triangle", "sine", "poly", "table")),
    Field("v_max", "float", "mm/s", 10.0, "velocity amplitude", minimum=0,
          min_exclusive=True, maximum=MAX_NUMBER),
    Field("phase_frames", "float", "frames", 0.0, "frame of the waveform's start", minimum=0,
          maximum=MAX_FRAMES),
    Field("period_frames", "float", "frames", None, "period; null: the number of frames",
          minimum=2, maximum=MAX_FRAMES, nullable=True),
    Field("v0_offset", "float", "mm/s", 0.0, "velocity offset v0", minimum=-MAX_NUMBER,
          maximum=MAX_NUMBER),
    Field("poly_coeffs", "list", "mm/s", [],
          "kind poly: coefficients on the measured waveform, lowest power first",
          item=Field("c", "float", minimum=-MAX_NUMBER, maximum=MAX_NUMBER)),
    Field("table_mm_s", "list", "mm/s", [], "kind table: velocity of each frame",
          item=Field("v", "float", minimum=-MAX_NUMBER, maximum=MAX_NUMBER)),
), "A built-in velocity calibration (instead of the app's calibration_velocity.py).",
    checks=(check_velocity_calibration,))

ANGLE_CALIBRATION = TypeSchema("angle_calibration", 1, (
    Field("number", "int", "", 0, "calibration number this record defines", minimum=0,
          maximum=MAX_NUMBER),
    Field("kind", "enum", "", "none", "energy scale factor g(2theta)",
          choices=("none", "cos2theta", "table")),
    Field("thickness_path_factor", "bool", "", False, "apply the sample path-length factor"),
    Field("table", "list", "", [], "kind table: [two_theta_deg, factor] pairs",
          item=Field("pair", "list", length=2,
                     item=Field("x", "float", minimum=-MAX_NUMBER, maximum=MAX_NUMBER))),
), "A built-in angle calibration (instead of the app's calibration_angle.py).",
    checks=(check_angle_calibration,))

Q_RANGE = TypeSchema("q_range", 1, (
    Field("q_min", "float", "nm^-1", None, "lower end of the q range [M]", minimum=0,
          maximum=1000, nullable=True, required=True),
    Field("q_max", "float", "nm^-1", None, "upper end of the q range [M]", minimum=0,
          maximum=1000, nullable=True, required=True),
), "q range summed into the quasi-elastic spectrum (q_min < q_max).", checks=(check_q_range,))

E_SPECTRUM = TypeSchema("e_spectrum", 1, (
    Field("rebin_factor", "int", "", 1, "frames per energy bin relative to the finest grid [M]",
          minimum=1, maximum=MAX_FRAMES),
    Field("binning", "enum", "", "local_linear",
          "local_linear: a local linear fit to the frames within one step of each bin centre "
          "(unbiased, every frame used); interpolate: each sweep interpolated at the bin centres "
          "(unbiased, frames between two centres unused); average: the app's mean per bin (biased "
          "when a frame step is a sizeable part of the line width)",
          choices=("average", "interpolate", "local_linear")),
    Field("turnaround_cut_frac", "float", "", 0.9, "keep |v| <= this x max |v|", minimum=0,
          min_exclusive=True, maximum=1),
    Field("turnaround_guard_frames", "int", "frames", 0,
          "also drop this many frames around each velocity extremum", minimum=0,
          maximum=MAX_FRAMES),
    Field("bg_fit_enabled", "bool", "", False, "slope fit of the background (else flat) [M]"),
    Field("bg_n_points", "int", "", None, "wing points per side used for the background [M]; "
          "null: 30, at most a quarter of the spectrum (K // 4)", minimum=2, maximum=MAX_FRAMES,
          nullable=True),
    Field("relax_bg_coeff", "float", "", 1.0, "scale of the quasi-elastic background [M]",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("isf_error_threshold", "float", "", 0.05,
          "ISF points with a larger error are not shown [M]", minimum=0, maximum=MAX_NUMBER),
    Field("n_mc", "int", "", 500, "Monte-Carlo resamples for the ISF errors [M]", minimum=2,
          maximum=100_000),
    Field("mc_noise", "enum", "", "gaussian",
          "noise drawn per frame and q bin: gaussian (exact covariance) or poisson (counts)",
          choices=("poisson", "gaussian")),
    Field("seed", "int", "", None, "random seed; null: derived from the data's content and the "
          "parameters, and recorded", minimum=0, maximum=2**32 - 1, nullable=True),
    Field("isf_normalisation", "enum", "", "absolute", "absolute: F(0) = f_q; unit: F(0) = 1",
          choices=("absolute", "unit")),
    Field("fit_model", "enum", "", "exp", "fit of the ISF", choices=("exp", "kww", "none")),
    Field("check_max_step_per_resolution", "float", "", checks.MAX_STEP_PER_RESOLUTION,
          "physics check: largest energy step, as a fraction of the resolution width",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("check_max_step_per_line_width", "float", "", checks.MAX_STEP_PER_LINE_WIDTH,
          "physics check: largest energy step, as a fraction of the line width 2 hbar/tau",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("check_min_window_ratio", "float", "", checks.MIN_WINDOW_RATIO,
          "physics check: smallest energy-window half-width, in quasi-elastic line widths",
          minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("check_min_kept_frames", "int", "frames", checks.MIN_KEPT_FRAMES,
          "physics check: fewest frames left after the cuts", minimum=1, maximum=MAX_FRAMES),
    Field("check_max_f0_pull", "float", "", checks.MAX_F0_PULL,
          "physics check: largest |F(0) - f_q| in units of its error (f_q scaled by the share of "
          "the line areas the window keeps)", minimum=0, min_exclusive=True, maximum=MAX_NUMBER),
    Field("output_subdir_mode", "enum", "", "q_range",
          "q_range: folder named q_min_q_max; specify: output_subdir [M]",
          choices=("q_range", "specify")),
    _subdir("output_subdir", "sub-folder of e_spectrum_and_isf/ with output_subdir_mode specify"),
    _subdir("input_subdir", "sub-folder of q_integration/ to read"),
), "E spectrum and ISF settings (ESpectrumParams without the q range).")

PRESSURE_UNITS = {"Pa": 1.0, "kPa": 1e3, "MPa": 1e6, "GPa": 1e9, "bar": 1e5, "mbar": 1e2,
                  "atm": 101325.0}
"""Pascal per unit of each ``conditions.pressure_unit``."""

CONDITIONS = TypeSchema("conditions", 1, (
    Field("temperature", "float", "temperature_unit", None,
          "sample temperature in temperature_unit (above 0 K); null: not recorded",
          minimum=-MAX_NUMBER, maximum=MAX_NUMBER, nullable=True),
    Field("temperature_unit", "enum", "", "K", "unit of temperature: K, or C (degrees Celsius)",
          choices=("K", "C")),
    Field("pressure", "float", "pressure_unit", None,
          "sample pressure (absolute) in pressure_unit; null: not recorded",
          minimum=0, maximum=MAX_NUMBER, nullable=True),
    Field("pressure_unit", "enum", "", "Pa", "unit of pressure", choices=tuple(PRESSURE_UNITS)),
    Field("fields", "mapping", "", {},
          f"free conditions: names (a letter or _, then letters, digits or _; at most 64 "
          f"characters) to finite numbers or text (at most {MAX_CONDITION_TEXT} characters), at most "
          f"{MAX_CONDITION_FIELDS}"),
), "The conditions of a sample (temperature, pressure, free fields); read by no cooking step, "
   "carried into the tables and the fits of tau(T) (docs/spice.md#sample-conditions).",
    checks=(check_conditions,))

SCHEMAS = (SENSOR_LAYOUT, ROI, RECONSTRUCTION, GEOMETRY, Q_INTEGRATION, SP_PARAM, CALIBRATION,
           VELOCITY_CALIBRATION, ANGLE_CALIBRATION, Q_RANGE, E_SPECTRUM, CONDITIONS)
REGISTRY = Registry(SCHEMAS, strict=True)


def defaults():
    """``{type: {field: default}}`` of every E-QEGS type (fresh copies)."""
    return REGISTRY.defaults()


def units():
    """``{type: {field: unit}}`` of every E-QEGS type."""
    return REGISTRY.units()


def schema_rows():
    """One dict per field (type, field, kind, unit, allowed, default, doc) for tables/docs."""
    return [{"type": schema.name, "field": field.name, "kind": field.kind, "unit": field.unit,
             "allowed": field.describe(), "default": field.default,
             "required": field.required, "doc": field.doc}
            for schema in SCHEMAS for field in schema.fields]
