"""Every parameter of the three steps reaches its kernel: a one-off override changes the result
the way the parameter says (the app manual's parameters and the library's additions)."""
import numpy as np
import pytest

from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    base = tmp_path_factory.mktemp("params")
    params = image_params(n_frames=512)
    write_runs(base, params, [7])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params, n_mc=40, bg_n_points=20, isf_error_threshold=0.1)
    return repo[PROPOSAL]["S001"]


def test_reconstruction_roi_parameters(sample):
    auto = sample.cook("reconstruction")
    x0, y0, x1, y1 = auto.attrs["roi"]
    smaller = sample.cook("reconstruction", auto_half_size=[5, 4])
    sx0, sy0, sx1, sy1 = smaller.attrs["roi"]
    assert (sx1 - sx0 + 1, sy1 - sy0 + 1) == (11, 9) and (x1 - x0) > (sx1 - sx0)
    assert sample.cook("reconstruction", median_prefilter=1).attrs["roi_detection"]["median_prefilter"] == 1
    manual = sample.cook("reconstruction", roi={"x0": 3, "y0": 4, "x1": 40, "y1": 50})
    assert manual.attrs["roi"] == [3, 4, 40, 50] and manual.attrs["roi_detection"] is None


def test_q_integration_parameters(sample):
    base = sample.cook("q_integration")
    assert sample.cook("q_integration", forward_box_halfwidth=2).forward_sample.sum() < base.forward_sample.sum()
    wider = sample.cook("q_integration", direct_exclusion_halfwidth=12)
    assert wider.mask.sum() < base.mask.sum()
    assert sample.cook("q_integration", radial_bin_px=2.0).sizes["q"] < base.sizes["q"]
    gauss = sample.cook("q_integration", centre_method="gauss2d")
    assert gauss.attrs["centre"]["method"] == "gauss2d"
    assert abs(gauss.attrs["centre_x"] - base.attrs["centre_x"]) < 0.2
    manual = sample.cook("q_integration", centre_method="manual", centre_x=20.0, centre_y=25.0)
    assert (manual.attrs["centre_x"], manual.attrs["centre_y"]) == (20.0, 25.0)
    loose = sample.cook("q_integration", centroid_threshold_frac=0.0, centre_iterations=1)
    assert loose.attrs["centre_x"] != base.attrs["centre_x"]
    solid = sample.cook("q_integration", solid_angle_correction=True)
    assert (solid.normalisation < base.normalisation).any()
    polar = sample.cook("q_integration", geometry={"polarisation_factor": 0.9})
    assert not np.allclose(polar.normalisation, base.normalisation)
    assert sample.cook("q_integration", pixel_splitting="bbox").npix.values.dtype == np.float64
    no_hot = sample.cook("q_integration", hot_pixel_mad=None)
    assert no_hot.mask.sum() >= base.mask.sum()
    far = sample.cook("q_integration", geometry={"distance_mm": 20.0})
    assert far.q.values[10] < base.q.values[10]
    unity = sample.cook("q_integration", bg_scale_mode="manual", bg_scale=1.5)
    assert unity.attrs["background"]["k"] == 1.5
    assert sample.cook("q_integration", bg_scale_mode="unity").attrs["background"]["k"] == 1.0
    sectors = sample.cook("q_integration", angle_mode="specify", sectors=[[0.0, 90.0]])
    assert sectors.mask.sum() < base.mask.sum()
    assert sample.cook("q_integration", sectors=[[0.0, 90.0]]).mask.sum() == base.mask.sum()  # angle_mode all


def test_e_spectrum_parameters(sample):
    base = sample.cooked
    step = base.attrs["energy_step_nev"]
    assert sample.cook(rebin_factor=2).attrs["energy_step_nev"] == pytest.approx(2 * step)
    slope = sample.cook(bg_fit_enabled=True)
    assert np.ptp(slope.forward_background.values) > 0 == np.ptp(base.forward_background.values)
    assert sample.cook(bg_n_points=5).forward_background[0] != base.forward_background[0]
    relaxed = sample.cook(relax_bg_coeff=1.25)
    later = base.t.values > 0
    np.testing.assert_allclose(relaxed.isf.values[later], base.isf.values[later] / 1.25, rtol=1e-9)
    assert sample.cook(isf_error_threshold=0.05).accepted.sum() < base.accepted.sum()
    assert sample.cook(start_cut_frames=40).kept.values[:40].sum() == 0 < base.kept.values[:40].sum()
    assert sample.cook(turnaround_cut_frac=0.6).kept.sum() < base.kept.sum()
    assert sample.cook(turnaround_guard_frames=20).kept.sum() < base.kept.sum()
    assert not np.allclose(sample.cook(binning="average").forward.values[:10], base.forward.values[:10])
    assert not np.allclose(sample.cook(seed=5).isf_sigma.values[1:], base.isf_sigma.values[1:])
    assert not np.allclose(sample.cook(n_mc=30).isf_sigma.values[1:], base.isf_sigma.values[1:])
    assert not np.allclose(sample.cook(mc_noise="poisson").isf_sigma.values[1:], base.isf_sigma.values[1:])
    assert sample.cook(isf_normalisation="unit").isf.values[0] == pytest.approx(1.0)
    kww = sample.cook(fit_model="kww")
    assert kww.beta.item() != 1.0 and kww.beta_error.item() > 0
    assert "tau" not in sample.cook(fit_model="none")
    assert sample.cook(q_min=11.5).sizes["q_sel"] < base.sizes["q_sel"]
    moved = sample.cook(velocity_calibration={"v0_offset": 0.2})
    assert moved.forward_energy.values[100] == pytest.approx(base.forward_energy.values[100] - 0.2 * 48.075)
    flat = sample.cook(angle_calibration={"kind": "none"})
    assert (flat.angle_factor.values == 1).all() and (base.angle_factor.values < 1).all()
