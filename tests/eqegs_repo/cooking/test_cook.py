"""End-to-end cooking on synthetic trees with known truth: datasets, physics, streaming, the
same numbers for a copied tree, the sensor layout from the marker, short runs, dead pixels."""
import os
import shutil

import numpy as np
import pytest

from eqegs_repo.cooking import passes
from eqegs_repo.errors import BadInput
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels.sensors import SensorLayout
from eqegs_repo.simulate import demo, synthetic
from tests.helpers.cooktrees import (
    BACKGROUND,
    PROPOSAL,
    image_params,
    repository,
    seed_spice,
    true_fit,
    write_runs,
)


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
        phi = qi.azimuth_deg(qds.mask.shape, centre=(25.3, 18.6))
        inside = (phi >= 300) | (phi <= 45) | ((phi >= 120) & (phi <= 150))
        assert not qds.mask.values[~inside].any() and qds.mask.values[inside].any()


def test_a_copied_tree_gives_bit_identical_results(tmp_path):
    """The Monte-Carlo seed comes from the data's content and the parameters: a copy of the tree
    (new paths, new file times, a new cache) gives the same tau, f_q and errors to the bit."""
    params = image_params(n_frames=256)
    write_runs(tmp_path / "first", params, [4])
    results = []
    for base in (tmp_path / "first", tmp_path / "copy"):
        if base.name == "copy":
            shutil.copytree(tmp_path / "first", base, ignore=shutil.ignore_patterns(".cache"))
            for path in base.rglob("*"):
                os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 7 * 10**9))
        repo = repository(base)
        seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=40)
        results.append(repo[PROPOSAL]["S001"].cooked)
    first, copy = results
    assert copy.attrs["fingerprint"] != first.attrs["fingerprint"]  # the cache sees new files...
    assert copy.attrs["seed"] == first.attrs["seed"] and first.attrs["seed_source"] == "content"
    for name in ("tau", "tau_error", "f_q", "f_q_error", "isf_sigma"):  # ...the numbers do not
        np.testing.assert_array_equal(copy[name].values, first[name].values)
    # other content gives another seed
    sensor = tmp_path / "copy" / PROPOSAL / "S001" / "train_integrated" / "sensor_0.npy"
    counts = np.load(sensor, mmap_mode="r+")
    counts[10, 3, 3] += 1
    counts.flush()
    del counts
    changed = repository(tmp_path / "copy")[PROPOSAL]["S001"].cooked
    assert changed.attrs["seed"] != first.attrs["seed"]
    recorded = repository(tmp_path / "copy")[PROPOSAL]["S001"].cook(seed=first.attrs["seed"])
    assert recorded.attrs["seed_source"] == "record"


def test_sensor_layout_comes_from_the_marker_unless_a_record_sets_it(tmp_path):
    params = image_params(n_frames=32, sensor_layout=SensorLayout.strips(n_sensors=3, sensor_shape=(48, 16)))
    write_runs(tmp_path, params, [1])
    repo = repository(tmp_path)                                     # no spice at all
    rec = repo[PROPOSAL]["S001"].cook("reconstruction")
    assert rec.image.shape == (48, 48) and rec.attrs["sensor_layout_source"] == "marker"
    assert rec.attrs["sensor_layout"]["offsets"] == [[0, 0], [0, 16], [0, 32]]
    np.testing.assert_array_equal(rec.coverage.values, 1)
    # a record overrides the marker's strips: the three sensors stacked vertically
    stacked = repo[PROPOSAL]["S001"].cook("reconstruction", sensor_layout={
        "offsets": [[0, 0], [48, 0], [96, 0]], "canvas_shape": [144, 16]})
    assert stacked.image.shape == (144, 16) and stacked.attrs["sensor_layout_source"] == "spice"
    assert stacked.image.values.sum() == rec.image.values.sum()
    # a record that disagrees with the marker is an error naming both
    repo[PROPOSAL].spice.seed("sensor_layout", sensor_shape=[64, 16])
    with pytest.raises(BadInput, match=r"sensor_layout.sensor_shape = \[64, 16\] \(from proposal .*\) disagrees "
                                       r"with the marker .*S001/train_integrated.json, which says "
                                       r"sensor_shape = \[48, 16\]"):
        repo[PROPOSAL]["S001"].cook("reconstruction")


def test_a_64_frame_sample_cooks_the_whole_chain_with_the_default_e_spectrum(tmp_path):
    # the exposure of the 1024-frame runs gathered into 64 frames (16 x the counts per frame)
    params = image_params(n_frames=64, flux=16 * 1.0e4, dtype="uint32")
    write_runs(tmp_path, params, [3])
    repo = repository(tmp_path)
    demo.seed_spice(repo[PROPOSAL], params, (11.0, 13.0), BACKGROUND)  # instrument only, no e_spectrum record
    ds = repo[PROPOSAL]["S001"].cooked
    n_energies = ds.sizes["energy"]
    assert n_energies < 60 and ds.attrs["isf_parameters"]["bg_n_points"] == n_energies // 4
    assert ds.attrs["isf_parameters"]["bg_n_points_rule"].startswith("default: min(30, K // 4)")
    assert np.isfinite(ds.tau.item()) and ds.tau_error.item() > 0
    with pytest.raises(BadInput, match=r"bg_n_points must be in .* got 30.*e_spectrum.bg_n_points = 30 "
                                       r"\(from override\)"):
        repo[PROPOSAL]["S001"].cook(bg_n_points=30)


def test_dead_pixels_in_the_ring_are_masked_reported_and_drawn(tmp_path):
    params = image_params(n_frames=128)
    write_runs(tmp_path, params, [8])
    planted = [(5, 40), (30, 10), (40, 55), (12, 60)]  # (x, y) on the 48 x 64 canvas, in the ring
    for x, y in planted:
        path = tmp_path / PROPOSAL / "S001" / "train_integrated" / f"sensor_{x // 16}.npy"
        counts = np.load(path, mmap_mode="r+")
        counts[:, y, x % 16] = 0
        counts.flush()
        del counts
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    qds = repo[PROPOSAL]["S001"].cook("q_integration")
    assert qds.attrs["n_dead_pixels"] == 4
    assert sorted(map(tuple, qds.attrs["dead_pixels"])) == sorted(planted)
    assert not any(qds.mask.values[y, x] for x, y in planted)
    pytest.importorskip("matplotlib")
    from eqegs_repo import figures

    (line,) = [line for line in figures.mask(qds).axes[0].lines if line.get_label().startswith("dead")]
    assert line.get_label() == "dead pixels (4)" and sorted(zip(line.get_xdata(), line.get_ydata())) == sorted(planted)
