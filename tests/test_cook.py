"""End-to-end cooking on synthetic trees with known truth: datasets, physics, streaming."""
import numpy as np
import pytest
from cooktrees import (
    BACKGROUND,
    PROPOSAL,
    image_params,
    repository,
    seed_spice,
    true_fit,
    write_runs,
)

from eqegs_repo.cooking import passes
from eqegs_repo.io.raw import NpyFile
from eqegs_repo.simulate import synthetic
from eqegs_repo.steps import q_integration as qi


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small preset (182 x 96 px, 1024 frames, 10 mm/s): background + one sample."""
    base = tmp_path_factory.mktemp("small")
    tree = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="small", seed=3, samples_per_proposal=1)
    truth = synthetic.load_truth(base, tree.account, PROPOSAL, "S001")
    repo = repository(tree.root)
    seed_spice(repo[PROPOSAL], truth.params, q_range=(11.0, 13.0))
    return repo, truth


def test_chain_recovers_centre_structure_factor_and_dynamics(small):
    repo, truth = small
    params = truth.params
    sample = repo[PROPOSAL]["S001"]
    rec = sample.cook("reconstruction")
    assert rec.image.dims == ("y", "x") and rec.image.shape == tuple(params.sensor_layout.canvas_shape)
    x0, y0, x1, y1 = rec.attrs["roi"]
    assert (x1 - x0 + 1, y1 - y0 + 1) == (75, 49)  # the manual's auto ROI size, inclusive corners
    assert rec.attrs["roi_mode"] == "auto" and rec.attrs["roi_detection"]["width"] == 75

    qds = sample.cook("q_integration")
    assert abs(qds.attrs["centre_x"] - params.centre_xy[0]) < 0.1
    assert abs(qds.attrs["centre_y"] - params.centre_xy[1]) < 0.1
    assert qds.intensity.dims == ("frame", "q") and qds.q.attrs["units"] == "nm^-1"
    assert qds.attrs["background"]["sample"] == BACKGROUND
    assert qds.attrs["background"]["k"] == pytest.approx(params.background_scale, rel=0.01)
    # S(q): background-subtracted intensity per pixel peaks where solid angle x S(q) does
    used = qds.npix.values > 0
    expected = np.cos(qds.two_theta.values) ** 3 * params.scatterers().structure(qds.q.values)
    peak = np.nanargmax(np.where(used, qds.profile.values, np.nan))
    assert abs(peak - np.argmax(np.where(used, expected, -1))) <= 1

    ds = sample.cooked
    assert ds.isf.dims == ("t",) and ds.t.attrs["units"] == "ns" and ds.energy.attrs["units"] == "neV"
    assert ds.velocity.attrs["units"] == "mm/s" and ds.velocity.dims == ("frame",)
    tau, f_q = true_fit(ds, params)
    assert abs(ds.tau.item() - tau) <= 2 * ds.tau_error.item()
    assert abs(ds.f_q.item() - f_q) <= 2 * ds.f_q_error.item()
    assert ds.tau_error.item() < 0.15 * tau and 0.2 < ds.chi2_red.item() < 3
    np.testing.assert_array_equal(np.isnan(ds.isf_thresholded.values), ~ds.accepted.values)
    assert ds.structure_factor.dims == ("q",) and int(ds.in_q_range.sum()) == ds.sizes["q_sel"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny canvas (64 x 48 px), 1024 frames: background + one sample."""
    base = tmp_path_factory.mktemp("tiny")
    params = image_params()
    write_runs(base, params, [5])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params)
    return repo, params


def test_unsubtracted_background_biases_f_q_not_tau(small):
    repo, truth = small
    params = truth.params
    sample = repo[PROPOSAL]["S001"]
    with_bg = sample.cooked
    without = sample.cook(q_integration={"bg_sample_id": None})
    assert without.attrs["overrides"] == {"q_integration": {"bg_sample_id": None}}
    # the dark level d (flat, not absorbed) stays in: f_q drops by S/(S + d), tau does not move
    qds = sample.cook("q_integration")
    level = qds.profile.values[qds.npix.values > 0]
    signal = np.nanmean(level) / params.n_frames
    predicted = with_bg.f_q.item() * signal / (signal + params.dark)
    assert abs(without.f_q.item() - predicted) < 3 * without.f_q_error.item()
    assert with_bg.f_q.item() - without.f_q.item() > 4 * with_bg.f_q_error.item()
    assert abs(without.tau.item() - with_bg.tau.item()) < 2 * with_bg.tau_error.item()


def test_streaming_block_size_does_not_change_results(tiny, monkeypatch):
    repo, _ = tiny
    sample = repo[PROPOSAL]["S001"]
    whole = sample.cook("q_integration", use_cache=False)
    reads = []
    original = NpyFile.read_frames

    def spy(self, start, stop, out=None):
        reads.append(stop - start)
        return original(self, start, stop, out)

    monkeypatch.setattr(passes, "BLOCK_BYTES", 3 * 64 * 16 * 2 * 100)  # 100 frames per block
    monkeypatch.setattr(NpyFile, "read_frames", spy)
    blocked = sample.cook("q_integration", use_cache=False)
    # 3 sensor files each: the sample once (fused), the background once
    assert max(reads) == 100 and sum(reads) == 2 * 3 * 1024
    np.testing.assert_array_equal(blocked.intensity.values, whole.intensity.values)
    np.testing.assert_array_equal(blocked.forward_sample.values, whole.forward_sample.values)


def constant_tree(base, value=7.0, n_frames=6, dtype="float32"):
    """A sample whose every pixel holds ``value`` counts in every frame (3 strips of 40 x 20)."""
    folder = base / PROPOSAL / "S001"
    raw = folder / "train_integrated"
    raw.mkdir(parents=True)
    for k in range(3):
        np.save(raw / f"sensor_{k}.npy", np.full((n_frames, 40, 20), value, dtype))
    np.save(raw / "velocity.npy", np.linspace(-1, 1, n_frames))
    (folder / "train_integrated.json").write_text(
        f'{{"n_frames": {n_frames}, "n_sensors": 3, "sensor_shape": [40, 20]}}')
    repo = repository(base)
    prop = repo[PROPOSAL]
    prop.spice.seed("sensor_layout", sensor_shape=[40, 20], offsets=[[0, 0], [0, 20], [0, 40]],
                    canvas_shape=[40, 60])
    prop.spice.seed("q_integration", centre_method="manual", centre_x=25.3, centre_y=18.6,
                    direct_exclusion_halfwidth=4)
    prop.spice.seed("geometry", distance_mm=10.0)
    return prop["S001"]


@pytest.mark.parametrize("overrides", [
    {},
    {"angle_mode": "specify", "sectors": [[300.0, 45.0], [120.0, 150.0]]},
    {"direct_exclusion_halfwidth": 0, "hot_pixel_mad": None},
    {"pixel_splitting": "bbox", "radial_bin_px": 0.5},
])
def test_constant_image_gives_a_constant_profile(tmp_path, overrides):
    sample = constant_tree(tmp_path)
    qds = sample.cook("q_integration", **overrides)
    used = qds.npix.values > 0.5  # bbox: bins with at least half a pixel
    np.testing.assert_allclose(qds.profile.values[used], 7.0 * 6, rtol=1e-6)
    if overrides.get("sectors"):
        phi = qi.azimuth_deg(qds.mask.shape, (25.3, 18.6))
        inside = (phi >= 300) | (phi <= 45) | ((phi >= 120) & (phi <= 150))
        assert not qds.mask.values[~inside].any() and qds.mask.values[inside].any()
