"""The E-spectrum-and-ISF folder of the app: the ISF with its thresholded part and fit, the
energy spectra, the structure factor, the subtracted image and copies of the calibration files
(docs/outputs.md). The ``*`` of the file names is :func:`names.file_suffix`."""
import numpy as np
import xarray as xr

from eqegs_repo.errors import BadSample
from eqegs_repo.io.app_format import names
from eqegs_repo.io.app_format.text import image_text, read_image, read_table, table_text
from eqegs_repo.naming import natural_sorted

_FIT_VARIABLES = (("f_q", "f_q", ""), ("f_q_error", "f_q_error", ""), ("tau", "tau_ns", "ns"),
                  ("tau_error", "tau_error_ns", "ns"), ("beta", "beta", ""), ("beta_error", "beta_error", ""),
                  ("chi2_red", "chi2_red", ""))


def write(stage, ds, inputs):
    """Write the E spectrum and ISF ``ds`` into ``stage``. ``inputs``: ``sample_key``,
    ``relax_bg_coeff``, ``image_diff`` (the q integration's subtracted image, (H, W)) and
    ``calibration_files`` (``{name: bytes}``, copied into dl/info/). The ISF and quasi-elastic
    tables start with a ``#`` line naming the q of the result (:func:`q_note`)."""
    suffix = names.file_suffix(inputs["sample_key"], ds.attrs["q_min"], ds.attrs["q_max"], inputs["relax_bg_coeff"])
    notes = (q_note(ds.attrs),)
    stage.write(names.STRUCTURE_FACTOR_CSV, table_text({"q_nm^-1": ds["q"].values,
                                                  "I_per_px": ds["structure_factor"].values,
                                                  "sigma": ds["structure_factor_sigma"].values},
                                                 delimiter=",", comment=""))
    stage.write(names.DIFF_IMAGE_E_CSV, image_text(inputs["image_diff"]))
    for prefix, name in ((names.RELAX_PREFIX, "qe"), (names.RESOL_PREFIX, "forward")):
        stage.write(prefix + suffix, table_text({"E_neV": ds["energy"].values,
                                                 "normalised": ds[f"{name}_absorption"].values,
                                                 "sigma": ds[f"{name}_absorption_sigma"].values},
                                                notes=notes if name == "qe" else ()))
    t, isf, sigma = ds["t"].values, ds["isf"].values, ds["isf_sigma"].values
    stage.write(names.ISF_PREFIX + suffix, table_text({"t_ns": t, "F": isf, "sigma": sigma}, notes=notes))
    accepted = ds["accepted"].values.astype(bool)
    stage.write(names.ISF_THRESH_PREFIX + suffix, table_text({"t_ns": t[accepted], "F": isf[accepted],
                                                        "sigma": sigma[accepted]}, notes=notes))
    if "isf_fit" in ds:
        stage.write(names.ISF_FIT_PREFIX + suffix, table_text({"t_ns": t, "F_fit": ds["isf_fit"].values},
                                                              notes=notes))
    for name, content in inputs["calibration_files"].items():
        stage.write(f"{names.INFO_DIR}/{name}", content)


def q_note(attrs):
    """The line naming the q of a result in its text tables, from the dataset ``attrs``:
    ``q_weighted 12.081 nm^-1 (intensity-weighted mean q of the pixels used); pixels
    11.551..12.592 nm^-1; requested 11.5..12.5 nm^-1``."""
    return (f"q_weighted {attrs['q_weighted']:.4f} nm^-1 (intensity-weighted mean q of the pixels used); "
            f"pixels {attrs['q_pixel_min']:.4f}..{attrs['q_pixel_max']:.4f} nm^-1; "
            f"requested {attrs['q_min']:g}..{attrs['q_max']:g} nm^-1")


def _dl_files(fs, folder):
    """Names of the files directly in ``<folder>/dl`` (relative to ``folder``, natural order)."""
    base = f"{folder}/{names.DL}"
    if not fs.isdir(base):
        return []
    return natural_sorted(f"{names.DL}/{e['name'].rstrip('/').rsplit('/', 1)[-1]}"
                          for e in fs.ls(base, detail=True) if e.get("type") == "file")


def _pick(fs, folder, prefix, attrs, exclude=None):
    """The file ``<prefix>*`` of a folder: the one info.json lists, else the last in natural
    order (all candidates are recorded in ``attrs["candidates"]``); None when there is none."""
    found = [f for f in _dl_files(fs, folder) if f.startswith(prefix) and not (exclude and f.startswith(exclude))]
    if not found:
        return None
    if len(found) > 1:
        attrs.setdefault("candidates", {})[prefix] = found
    listed = [f for f in found if f in attrs.get("files", [])]
    return (listed or found)[-1]


def read(fs, folder, attrs):
    """The E spectrum and ISF in ``folder`` as a Dataset (``attrs``: those of its info.json)."""
    found = _pick(fs, folder, names.ISF_PREFIX, attrs, exclude=names.ISF_THRESH_PREFIX)
    if found is None:
        raise BadSample(f"{folder}: no {names.ISF_PREFIX}* file (the ISF) found")
    isf = read_table(fs, folder, found, 3)
    t = isf[:, 0]
    coords = {"t": xr.Variable("t", t, {"units": "ns"})}
    data = {"isf": xr.Variable("t", isf[:, 1]), "isf_sigma": xr.Variable("t", isf[:, 2])}
    thresh = _pick(fs, folder, names.ISF_THRESH_PREFIX, attrs)
    if thresh is not None:
        accepted = np.isin(t, read_table(fs, folder, thresh, 1)[:, 0])
        data["accepted"] = xr.Variable("t", accepted)
        data["isf_thresholded"] = xr.Variable("t", np.where(accepted, isf[:, 1], np.nan))
    fit_file = _pick(fs, folder, names.ISF_FIT_PREFIX, attrs)
    if fit_file is not None:
        fit_curve = read_table(fs, folder, fit_file, 2)
        if len(fit_curve) == len(t):
            data["isf_fit"] = xr.Variable("t", fit_curve[:, 1])
    fit = attrs.get("fit")
    if isinstance(fit, dict):
        for name, key, unit in _FIT_VARIABLES:
            if key in fit:
                data[name] = xr.Variable((), fit[key], {"units": unit} if unit else {})
    energy = None
    for prefix, label in ((names.RESOL_PREFIX, "forward"), (names.RELAX_PREFIX, "qe")):
        chosen = _pick(fs, folder, prefix, attrs)
        if chosen is None:
            continue
        table = read_table(fs, folder, chosen, 2)
        dim = "energy" if energy is None or np.array_equal(energy, table[:, 0]) else f"energy_{label}"
        if energy is None:
            energy = table[:, 0]
        coords[dim] = xr.Variable(dim, table[:, 0], {"units": "neV"})
        data[f"{label}_absorption"] = xr.Variable(dim, table[:, 1])
        if table.shape[1] > 2:
            data[f"{label}_absorption_sigma"] = xr.Variable(dim, table[:, 2])
    structure = read_table(fs, folder, names.STRUCTURE_FACTOR_CSV, 2)
    if structure is not None:
        coords["q"] = xr.Variable("q", structure[:, 0], {"units": "nm^-1"})
        data["structure_factor"] = xr.Variable("q", structure[:, 1], {"units": "counts/px"})
        if structure.shape[1] > 2:
            data["structure_factor_sigma"] = xr.Variable("q", structure[:, 2], {"units": "counts/px"})
    image = read_image(fs, folder, names.DIFF_IMAGE_E_CSV)
    if image is not None:
        data["image_diff"] = image
    info_dir = f"{folder}/{names.INFO_DIR}"
    copies = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(info_dir, detail=True)
              if e.get("type") == "file"] if fs.isdir(info_dir) else []
    attrs["calibration_copies"] = sorted(c for c in copies if c != names.INFO_JSON.rsplit("/", 1)[-1])
    return xr.Dataset(data, coords=coords, attrs=attrs)
