"""The q-integration folder of the app: ``rdf.npz`` (radial sums of every frame), the mask, the
record ``q.json``, the subtracted image and the I(q) table (docs/outputs.md)."""
import io
import json

import numpy as np
import xarray as xr

from eqegs_repo.errors import BadSample
from eqegs_repo.io.app_format import names
from eqegs_repo.io.app_format.text import image_text, json_text, mask_sha256, read_image, read_table, table_text
from eqegs_repo.io.formats.npy import NpyFile


def write(stage, ds, inputs):
    """Write the q integration ``ds`` into ``stage``. ``inputs``: the values of the spice types
    ``q_integration`` and ``geometry`` and ``roi`` (x0, y0, x1, y1) of the reconstruction."""
    qp = inputs["q_integration"]
    mask = ds["mask"].values
    background = ds.attrs.get("background")
    sectors = np.asarray(qp["sectors"] if qp["angle_mode"] == "specify" else [], dtype=np.float64).reshape(-1, 2)
    arrays = {name: ds[name].values for name in ("q", "two_theta", "r_px", "npix", "q_mean", "q_pixel_min", "q_pixel_max",
                                               "normalisation")}
    arrays.update({
        "I_sum": ds["intensity"].values, "var": ds["variance"].values, "fwd_sample": ds["forward_sample"].values,
        "k": np.float64(background["k"] if background else np.nan),
        "centre": np.array([ds.attrs["centre_x"], ds.attrs["centre_y"]]),
        "roi": np.array(inputs["roi"], dtype=np.int64), "sectors": sectors,
        "mask_hash": np.array(mask_sha256(mask)),
        "param_record_ids": np.array(json.dumps(ds.attrs["spice"], sort_keys=True)),
        "fingerprint": np.array(ds.attrs["fingerprint"]),
    })
    if "forward_background" in ds:
        arrays["fwd_bg"] = ds["forward_background"].values
    with stage.open(names.RDF_NPZ) as f:
        np.savez(f, **arrays)
    if qp["angle_mode"] == "specify":
        with stage.open(names.MASK_NPY) as f:
            np.save(f, mask)
    geometry = inputs["geometry"]
    q_record = {
        "centre_x": ds.attrs["centre_x"], "centre_y": ds.attrs["centre_y"], "centre": ds.attrs["centre"],
        "roi": inputs["roi"], "wavelength_nm": geometry["wavelength_nm"],
        "pixel_size_mm": geometry["pixel_size_mm"], "distance_mm": geometry["distance_mm"],
        "radial_bin_px": qp["radial_bin_px"], "n_bins": int(ds.sizes["q"]),
        "q_first": float(ds["q"][0]), "q_last": float(ds["q"][-1]),
        "bg_sample_id": background["sample"] if background else None,
        "bg_scale_mode": background["mode"] if background else None,
        "k": background["k"] if background else None, "angle_mode": qp["angle_mode"],
        "sectors": sectors.tolist(), "mask_sha256": mask_sha256(mask), "n_pixels_used": ds.attrs["n_pixels_used"],
    }
    stage.write(names.Q_JSON, json_text(q_record))
    stage.write(names.DIFF_IMAGE_Q_CSV, image_text(ds["image_diff"].values))
    stage.write(names.RDF_TXT, table_text({"q_nm^-1": ds["q"].values, "I_per_px": ds["profile"].values,
                                     "sigma": ds["profile_sigma"].values, "r_px": ds["r_px"].values,
                                     "npix": ds["npix"].values}))


def _load_npz(fs, path):
    try:
        with np.load(io.BytesIO(fs.cat_file(path)), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise BadSample(f"{path}: not a readable .npz file ({exc})") from None


def read(fs, folder, attrs):
    """The q integration in ``folder`` as a Dataset (``attrs``: those of its info.json)."""
    path = f"{folder}/{names.RDF_NPZ}"
    if not fs.exists(path):
        raise BadSample(f"{folder}: {names.RDF_NPZ} not found (the q-integration result)")
    rdf = _load_npz(fs, path)
    missing = [k for k in ("q", "I_sum") if k not in rdf]
    if missing:
        raise BadSample(f"{path}: keys {missing} missing; found {sorted(rdf)}")
    q, intensity = np.ravel(rdf["q"]), np.atleast_2d(rdf["I_sum"])
    if intensity.shape[1] != q.size:
        raise BadSample(f"{path}: I_sum has shape {intensity.shape} but q has {q.size} bins; expected "
                        "(frames, bins)")
    n_frames = intensity.shape[0]
    units = {"q": "nm^-1", "two_theta": "rad", "r_px": "px", "npix": "px", "q_mean": "nm^-1", "q_pixel_min": "nm^-1",
             "q_pixel_max": "nm^-1"}
    coords = {"q": xr.Variable("q", q, {"units": "nm^-1"}), "frame": np.arange(n_frames)}
    for name in ("two_theta", "r_px", "npix", "q_mean", "q_pixel_min", "q_pixel_max", "normalisation"):
        if name in rdf and np.size(rdf[name]) == q.size:
            coords[name] = xr.Variable("q", np.ravel(rdf[name]), {"units": units[name]} if name in units else {})
    data = {"intensity": xr.Variable(("frame", "q"), intensity, {"units": "counts"})}
    if "var" in rdf and np.shape(rdf["var"]) == intensity.shape:
        data["variance"] = xr.Variable(("frame", "q"), rdf["var"], {"units": "counts^2"})
    for key, name in (("fwd_sample", "forward_sample"), ("fwd_bg", "forward_background")):
        if key in rdf and np.size(rdf[key]) == n_frames:
            data[name] = xr.Variable("frame", np.ravel(rdf[key]), {"units": "counts"})
    if "centre" in rdf and np.size(rdf["centre"]) == 2:
        attrs.setdefault("centre_x", float(rdf["centre"][0]))
        attrs.setdefault("centre_y", float(rdf["centre"][1]))
    for key in ("roi", "sectors", "k", "mask_hash", "param_record_ids", "fingerprint"):
        if key in rdf:
            attrs.setdefault(key, rdf[key].tolist())
    profile = read_table(fs, folder, names.RDF_TXT, 2)
    if profile is not None:
        dim = "q" if len(profile) == q.size else "q_profile"
        if dim != "q":
            coords["q_profile"] = xr.Variable(dim, profile[:, 0], {"units": "nm^-1"})
        data["profile"] = xr.Variable(dim, profile[:, 1], {"units": "counts/px"})
        if profile.shape[1] > 2:
            data["profile_sigma"] = xr.Variable(dim, profile[:, 2], {"units": "counts/px"})
    image = read_image(fs, folder, names.DIFF_IMAGE_Q_CSV)
    if image is not None:
        data["image_diff"] = image
    mask = f"{folder}/{names.MASK_NPY}"
    if fs.exists(mask):
        data["mask"] = xr.Variable(("y", "x"), NpyFile(fs, mask).read().astype(bool))
    return xr.Dataset(data, coords=coords, attrs=attrs)
