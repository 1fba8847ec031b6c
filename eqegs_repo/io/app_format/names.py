"""The app's names on disk: its step folders, the files inside them, the download zips and how
q values and sample numbers appear in those names (docs/outputs.md).

Each step's writer and reader (the modules of :mod:`eqegs_repo.io.app_format`) take their names
from here; a step's folder in a sample folder is named after the step (:mod:`eqegs_repo.step_table`).
Paths are relative to a step folder unless said otherwise.
"""
import re

from eqegs_repo.errors import BadInput
from eqegs_repo.step_table import check_step

INFO_FORMAT = "eqegs_repo info 1"
"""The ``format`` field of the info.json this library writes into every exported step folder."""
PROVENANCE_ATTRS = ("step", "proposal", "sample", "fingerprint", "library_version", "spice", "overrides",
                    "parameters", "input")
"""The dataset attrs that info.json keeps and reading it back restores."""

# Every step folder
DL = "dl"
LOG_DIR = "log"
FIG_DIR = "dl/fig"
INFO_DIR = "dl/info"
INFO_JSON = "dl/info/info.json"
LOG_FILE = "log/eqegs_export.log"
PUBLISHING_SUFFIX = ".publishing"
"""A file ``<sample>/.<step>[-<sub>].publishing`` exists while an export moves a result into
place; one left behind by a stopped writer marks the result as incomplete."""
TAKEOVER_LOCK = ".eqegs-export.lock"
"""An empty file in a sample folder, locked while an export takes a stopped export's claim over
(:func:`eqegs_repo.cooking.publish.takeover_lock`); it stays, as a lock file does."""
NAME_MAX_BYTES = 255
"""Longest file or folder name (bytes, UTF-8) that common file systems accept."""
# reconstruction
RECONSTRUCTION_NPY = "reconstruction.npy"
RECONSTRUCTION_CSV = "reconstruction.csv"
ROI_DETECTION_JSON = "dl/info/roi_detection.json"
MARKER_COPY = "dl/info/train_integrated.json"
# q_integration
RDF_NPZ = "rdf.npz"
MASK_NPY = "mask.npy"
Q_JSON = "dl/info/q.json"
DIFF_IMAGE_Q_CSV = "dl/2Dimage_diff_SCATTERING_NOISE.csv"
RDF_TXT = "dl/rdf_diff_scattering_noise.txt"
# e_spectrum_and_isf: fixed names and prefixes followed by file_suffix(...)
STRUCTURE_FACTOR_CSV = "dl/1D_SCATTERING_intensity.csv"
DIFF_IMAGE_E_CSV = "dl/2Dimage_diff.csv"
RELAX_PREFIX = "dl/Energyfit_relax_"
RESOL_PREFIX = "dl/Energyfit_resol_"
ISF_PREFIX = "dl/time_Sq_std_"
ISF_THRESH_PREFIX = "dl/time_Sq_std_THRESH_"
ISF_FIT_PREFIX = "dl/ISF_fit_"  # library addition: the fitted curve


def hidden_tag(step, subdir=""):
    """``step`` or ``step-sub``: the hidden names an export uses in the sample folder (staging
    ``.<tag>.tmp-<owner>``, replaced entries ``.<tag>.old-<owner>``, the publishing marker;
    :func:`eqegs_repo.cooking.publish.owned_suffix`)."""
    return step + (f"-{subdir}" if subdir else "")


def publishing_marker(sample_path, step, subdir=""):
    """Path of the marker that exists while the result of ``step[/subdir]`` is published."""
    return f"{sample_path}/.{hidden_tag(step, subdir)}{PUBLISHING_SUFFIX}"


def check_file_name(name, what):
    """Refuse a file or folder name the library would write when it holds a control character
    (a new line or terminal escape taken from a sample folder's name: such a character is never
    replaced, as two samples could then share one file) or is longer than
    :data:`NAME_MAX_BYTES`, naming ``what``. Returns ``name``."""
    control = next((c for c in name if c < " " or "\x7f" <= c <= "\x9f"), None)
    if control is not None:
        raise BadInput(f"{what} {name!r} holds the control character {control!r}; names written by "
                       "the library hold none: rename the sample folder")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > NAME_MAX_BYTES:
        raise BadInput(f"{what} {name[:60]!r}... is {size} bytes long; file systems accept names of "
                       f"at most {NAME_MAX_BYTES} bytes: use a shorter sample key or sub-folder name")
    return name


def format_number(value):
    """A q value or coefficient as the app writes it in names: ``10.0 -> "10"``, ``10.1 -> "10.1"``
    (the shortest text that reads back as the same float)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def q_range_folder(q_min, q_max):
    """Sub-folder name of output_subdir_mode ``q_range``: ``"10.1_14.1"``, ``"10_14"``."""
    return f"{format_number(q_min)}_{format_number(q_max)}"


def file_suffix(sample_key, q_min, q_max, relax_bg_coeff):
    """The ``*`` of the E-spectrum file names (docs/outputs.md#naming-choices: the app's
    ``<numeric part of Sample ID>_q<q_min>to<q_max>q_BG_coeff.txt``), read as ``BG_`` followed by
    the value of relax BG coeff:
    ``file_suffix("S001", 10.1, 14.1, 1.0) == "001_q10.1to14.1q_BG_1.txt"``. A sample ID without
    digits is used whole."""
    number = numeric_part(sample_key) or sample_key
    return (f"{number}_q{format_number(q_min)}to{format_number(q_max)}q_BG_"
            f"{format_number(relax_bg_coeff)}.txt")


def zip_name(step, sample_key, q_subdir="", e_subdir=""):
    """Download zip name (docs/outputs.md#naming-choices): ``reconstruction_<SI>.zip``,
    ``q_integration_<SI>[_<QS>].zip``, ``e_spectrum_and_isf_<SI>[_i_<QS>][_o_<ES>].zip``.
    ``q_subdir``: the q-integration sub-folder ($QS; for E spectrum the input sub-folder);
    ``e_subdir``: the E-spectrum output sub-folder ($ES)."""
    check_step(step)
    name = f"{step}_{sample_key}"
    if step == "q_integration" and q_subdir:
        name += f"_{q_subdir}"
    if step == "e_spectrum_and_isf":
        name += (f"_i_{q_subdir}" if q_subdir else "") + (f"_o_{e_subdir}" if e_subdir else "")
    return name + ".zip"


def numeric_part(key):
    """The digits of a sample key (``"S001"`` -> ``"001"``), or "" if it has none."""
    return "".join(re.findall(r"\d", str(key)))
