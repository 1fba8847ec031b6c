"""sample.results: step folders on disk (ours and the app's) read back as datasets."""
import json
import os

import numpy as np
import pytest
from xarray.core import indexing

from eqegs_repo import BadSample, KeyNotFound, Repository, figures
from eqegs_repo.io.app_format.text import read_columns
from eqegs_repo.simulate import synthetic
from tests.helpers.cooktrees import PROPOSAL, demo_tree


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Tiny tree with S001 exported (all three steps) and the cooked datasets to compare with."""
    base = tmp_path_factory.mktemp("results")
    repo = demo_tree(base, seed=2, spice_url="memory://spice-results")
    sample = repo[PROPOSAL]["S001"]
    cooked = {step: sample.export(step).dataset for step in ("reconstruction", "q_integration", "e_spectrum_and_isf")}
    return sample, cooked


def _assert_same(read, cooked, names):
    for name in names:
        np.testing.assert_array_equal(read[name].values, cooked[name].values, err_msg=name)


def test_round_trip_gives_back_the_numbers_and_parameters(exported):
    sample, cooked = exported
    results = sample.results
    assert {s: list(r) for s, r in results.items()} == {
        "reconstruction": ["main"], "q_integration": ["main"], "e_spectrum_and_isf": ["11_13"]}
    rec = results["reconstruction"]["main"]
    _assert_same(rec, cooked["reconstruction"], ["image"])
    assert rec.attrs["roi"] == cooked["reconstruction"].attrs["roi"]
    assert isinstance(rec["images"].variable._data, indexing.LazilyIndexedArray)  # not read yet
    frame_sums = rec["images"].sum(("y", "x"), dtype=np.float64).values
    np.testing.assert_array_equal(frame_sums, cooked["reconstruction"].counts_per_frame.values)

    qi = results["q_integration"]["main"]
    _assert_same(qi, cooked["q_integration"], ["intensity", "variance", "forward_sample", "forward_background",
                                               "profile", "profile_sigma", "image_diff", "q", "two_theta",
                                               "r_px", "npix", "q_mean", "normalisation"])
    assert qi.intensity.dims == ("frame", "q") and "mask" not in qi  # mask.npy only with sectors
    for key in ("centre_x", "centre_y", "background", "fingerprint", "spice", "overrides"):
        assert qi.attrs[key] == cooked["q_integration"].attrs[key], key

    es = results["e_spectrum_and_isf"]["11_13"]
    full = cooked["e_spectrum_and_isf"]
    _assert_same(es, full, ["t", "isf", "isf_sigma", "accepted", "isf_thresholded", "isf_fit", "f_q", "f_q_error",
                            "tau", "tau_error", "beta", "beta_error", "chi2_red", "energy", "forward_absorption",
                            "forward_absorption_sigma", "qe_absorption", "qe_absorption_sigma",
                            "structure_factor", "structure_factor_sigma"])
    np.testing.assert_array_equal(es.image_diff.values, cooked["q_integration"].image_diff.values)
    assert es.attrs["fit"] == full.attrs["fit"] and es.attrs["seed"] == full.attrs["seed"]
    assert es.attrs["written_by"] == "eqegs_repo"
    parameters = es.attrs["parameters"]
    assert parameters["e_spectrum"]["output_subdir_mode"] == "q_range"
    for type_name, values in full.attrs["parameters"].items():
        assert {k: parameters[type_name][k] for k in values} == values, type_name


def test_figures_draw_read_back_datasets(exported):
    sample, _ = exported
    results = sample.results
    figs = [figures.frame_summed_image(results["reconstruction"]["main"]),
            figures.intensity_profile(results["q_integration"]["main"]),
            figures.spectra(results["e_spectrum_and_isf"]["11_13"]),
            figures.isf(results["e_spectrum_and_isf"]["11_13"])]
    assert all(len(f.axes) >= 1 for f in figs)
    assert any("τ = " in t.get_text() and "±" in t.get_text() for t in figs[-1].axes[0].get_legend().get_texts())


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_plausible_app_written_folders_are_read(tmp_path):
    """Folders as the app could write them: its own info.json, CSV with a header line,
    whitespace tables, rdf.npz with the key names of PHYSICS.md §3.2, mask.npy."""
    base = tmp_path / "EQEGS"
    sample_dir = base / PROPOSAL / "S007"
    synthetic.write_sample(str(sample_dir), synthetic.preset_params("tiny", n_frames=8), seed=1)
    q_dir = sample_dir / "q_integration"
    frames, bins = 8, 5
    i_sum = np.arange(frames * bins, dtype=float).reshape(frames, bins)
    os.makedirs(q_dir)
    np.savez(q_dir / "rdf.npz", q=np.linspace(1, 5, bins), two_theta=np.linspace(0.01, 0.05, bins),
             r_px=np.arange(bins) + 0.5, npix=np.full(bins, 10.0), I_sum=i_sum, var=i_sum + 1,
             fwd_sample=np.ones(frames), fwd_bg=np.full(frames, 2.0), k=np.float64(0.5), centre=np.array([3.0, 4.0]),
             roi=np.array([0, 0, 9, 9]), sectors=np.array([[10.0, 80.0]]))
    np.save(q_dir / "mask.npy", np.eye(4, dtype=bool))
    _write(str(q_dir / "dl/info/info.json"), json.dumps({"bg": "S000", "angle_list": [[10, 80]]}))
    _write(str(q_dir / "dl/rdf_diff_scattering_noise.txt"), "q I\n1 10\n2 20\n3 30\n4 40\n5 50\n")
    e_dir = sample_dir / "e_spectrum_and_isf" / "10_14"
    _write(str(e_dir / "dl/time_Sq_std_007_q10to14q_BG_1.txt"), "t,F,sigma\n0,0.8,0.01\n10,0.6,0.02\n20,0.4,0.5\n")
    _write(str(e_dir / "dl/time_Sq_std_THRESH_007_q10to14q_BG_1.txt"), "10\t0.6\t0.02\n")
    _write(str(e_dir / "dl/Energyfit_relax_007_q10to14q_BG_1.txt"), "-1 0.9\n0 0.5\n1 0.9\n")
    _write(str(e_dir / "dl/info/info.json"), json.dumps({"q_min": 10, "q_max": 14}))
    _write(str(e_dir / "dl/info/sp_param.json"), '{"START_CUT_FRAMES": 5}')
    os.makedirs(sample_dir / "e_spectrum_and_isf" / ".10_15.tmp-abc")  # an export in progress: ignored
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)
    results = repo[PROPOSAL]["S007"].results
    assert list(results["q_integration"]) == ["main"] and list(results["e_spectrum_and_isf"]) == ["10_14"]
    assert list(results["reconstruction"]) == []
    qi = results["q_integration"]["main"]
    np.testing.assert_array_equal(qi.intensity.values, i_sum)
    np.testing.assert_array_equal(qi.profile.values, [10, 20, 30, 40, 50])
    np.testing.assert_array_equal(qi.forward_background.values, np.full(frames, 2.0))
    assert (qi.attrs["centre_x"], qi.attrs["centre_y"]) == (3.0, 4.0) and qi.attrs["k"] == 0.5
    assert qi.attrs["parameters"] == {"bg": "S000", "angle_list": [[10, 80]]} and qi.attrs["written_by"] == "app"
    assert qi["mask"].dtype == bool and int(qi["mask"].sum()) == 4
    es = results["e_spectrum_and_isf"]["10_14"]
    np.testing.assert_array_equal(es.t.values, [0, 10, 20])
    np.testing.assert_array_equal(es.isf_sigma.values, [0.01, 0.02, 0.5])
    np.testing.assert_array_equal(es.accepted.values, [False, True, False])
    np.testing.assert_array_equal(es.qe_absorption.values, [0.9, 0.5, 0.9])
    assert "forward_absorption" not in es and "tau" not in es
    assert es.attrs["parameters"] == {"q_min": 10, "q_max": 14} and es.attrs["calibration_copies"] == ["sp_param.json"]


def test_bad_files_are_reported_on_access_with_their_path(tmp_path):
    base = tmp_path / "EQEGS"
    sample_dir = base / PROPOSAL / "S001"
    synthetic.write_sample(str(sample_dir), synthetic.preset_params("tiny", n_frames=8), seed=1)
    _write(str(sample_dir / "e_spectrum_and_isf/A/dl/time_Sq_std_001_q1to2q_BG_1.txt"), "0 0.9\n1 0.8\n")
    _write(str(sample_dir / "e_spectrum_and_isf/B/dl/time_Sq_std_001_q1to2q_BG_1.txt"), "0 0.9 0.1\n1 0.8\n")
    os.makedirs(sample_dir / "q_integration")
    np.savez(sample_dir / "q_integration/rdf.npz", q=np.arange(3.0))
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)
    results = repo[PROPOSAL]["S001"].results  # listing reads no file
    with pytest.raises(BadSample, match=r"A/dl/time_Sq_std_001_q1to2q_BG_1.txt: expected at least 3 columns"):
        results["e_spectrum_and_isf"]["A"]
    with pytest.raises(BadSample, match=r"B/dl/time_Sq_std_001_q1to2q_BG_1.txt, line 2: 2 columns"):
        results["e_spectrum_and_isf"]["B"]
    with pytest.raises(BadSample, match=r"rdf.npz: keys \['I_sum'\] missing"):
        results["q_integration"]["main"]
    with pytest.raises(KeyNotFound, match="closest: 'A'"):
        results["e_spectrum_and_isf"]["a"]


def test_read_columns_accepts_commas_spaces_and_headers():
    text = "# comment\nt, F, sigma\n\n0, 1.5, 0.1\n2.5e1\t-0.25  nan\n"
    np.testing.assert_array_equal(read_columns(text, "x.txt", 3), [[0, 1.5, 0.1], [25, -0.25, np.nan]])
    with pytest.raises(BadSample, match="x.txt: no rows"):
        read_columns("t F\n", "x.txt", 1)
