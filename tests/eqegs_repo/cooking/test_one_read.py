"""One read on every detector: hot pixels of every brightness, flickering, late and dead ones give the
separate path's results to the last bit, with the sample read once (plus, for pixels the probe and
the checkpoints could not foresee, the blocks read before they were watched)."""

import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.sensors import sensor_pixels
from eqegs_repo.simulate.defects import add_pixel_defects
from tests.eqegs_repo.cooking.test_fused import assert_same, count_reads, q_integration, use_blocks
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params, repository, seed_spice, write_runs

N_FRAMES = 1024
BLOCK = 32  # frames per block: 32 blocks, a probe of 2 (frames 0-31 and 992-1023), checkpoints every 128 frames
ORDINARY = [("hot", 3, 2), ("hot", 20, 4), ("hot", 1000, 2), ("dead", 0, 2)]


@pytest.fixture
def small_blocks(monkeypatch):
    use_blocks(monkeypatch, BLOCK)


@pytest.fixture
def reads(monkeypatch):
    """Frames read per sample folder (all its sensor files together)."""
    return count_reads(monkeypatch, key=lambda path: path.split("/")[-3])


def near_the_beam(params, radius=12.0):
    """(n_sensors, rows, cols) bool: the sensor pixels within ``radius`` px of the beam centre."""
    layout = params.sensor_layout
    y, x = np.divmod(np.stack([sensor_pixels(layout, k) for k in range(layout.n_sensors)]), layout.canvas_shape[1])
    return np.hypot(x - params.centre_xy[0], y - params.centre_xy[1]) < radius


def tree(tmp_path, defects, seeds=(5,), rate=None):
    """Samples of ``seeds`` and their background, every run with the same ``defects`` (the same
    detector: the same pixels, drawn with one seed), away from the beam; an ROI of 17 x 17 px
    (the tiny canvas is smaller than the default ROI, and a bright pixel in it pulls the centroid)."""
    params = image_params(n_frames=N_FRAMES, **({} if rate is None else {"flux": rate, "dark": 0.05}))
    keys = write_runs(tmp_path, params, seeds)
    for key in [BACKGROUND] + keys:
        add_pixel_defects(tmp_path / PROPOSAL / key, defects, seed=3, avoid=near_the_beam(params))
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    for key in [BACKGROUND] + keys:
        repo[PROPOSAL].spice.seed("roi", anchor=key, auto_half_size=[8, 8])
    return repo, keys


@pytest.mark.parametrize("defects, rate", [
    (ORDINARY, None),
    (ORDINARY, 40.0),  # sparse counts: about 0.1 count per pixel and frame
    ([("hot", 3, 3), ("flicker", 1000, 3), ("flicker", 20, 3), ("dead", 0, 1)], None),
    ([("late", 1000, 2), ("late", 10, 2), ("hot", 100, 2)], None),
])
def test_every_detector_gives_the_separate_results_to_the_last_bit(tmp_path, small_blocks, reads, defects, rate):
    repo, _ = tree(tmp_path, defects, rate=rate)
    sample = repo[PROPOSAL]["S001"]
    fused = q_integration(sample, True)
    info = fused.attrs["passes"]
    assert info["path"] == "fused" and info["reason"] is None, info
    assert reads["S001"] == 3 * (N_FRAMES + info["reread_frames"])
    kinds = {kind for kind, _, _ in defects}
    if "flicker" not in kinds:  # the probe sees them (late ones in its last block): one read exactly
        assert info["sample_reads"] == 1 and info["reread_frames"] == 0
    else:  # those that flicker outside the probe are subtracted after a partial read
        assert info["removed_pixels"] and info["reread_frames"] > 0
    assert fused.attrs["n_dead_pixels"] >= ("dead" in kinds)
    separate = q_integration(sample, False)
    assert separate.attrs["passes"]["sample_reads"] == 2
    assert_same(fused, separate)
    assert (~fused.mask.values).sum() == (~separate.mask.values).sum()


def test_three_samples_sharing_a_background_read_little_more_than_once(tmp_path, small_blocks, reads):
    repo, keys = tree(tmp_path, ORDINARY, seeds=(5, 6, 7))
    prop = repo[PROPOSAL]
    cooked = {key: prop[key].cook("q_integration") for key in keys}
    sample_sizes = sum(reads.values()) / (3 * N_FRAMES)
    assert sample_sizes <= 4.4, dict(reads)
    assert [cooked[k].attrs["passes"]["background"] for k in keys] == ["read", "shared", "shared"]
    for key in keys:
        assert cooked[key].attrs["passes"]["path"] == "fused"
        assert_same(cooked[key], q_integration(prop[key], False))


def test_step_by_step_reads_the_sample_once(tmp_path, small_blocks, reads):
    repo, _ = tree(tmp_path, ORDINARY)
    sample = repo[PROPOSAL]["S001"]
    rec = sample.cook("reconstruction")
    assert reads["S001"] == 3 * N_FRAMES and not reads[BACKGROUND]
    qds = sample.cook("q_integration")
    assert reads["S001"] == 3 * N_FRAMES  # the sums the reconstruction step left
    info = qds.attrs["passes"]
    assert info["path"] == "fused" and info["read_by"] == "reconstruction" and info["sample_reads"] == 1
    assert_same(qds, q_integration(sample, False))
    np.testing.assert_array_equal(rec.image.values, sample.cook("reconstruction", use_cache=False).image.values)
    # another recipe than the one foreseen: the integration reads the sample itself
    reads.clear()
    other = sample.cook("q_integration", hot_pixel_mad=5.0)
    assert other.attrs["passes"]["reason"] == "the reconstruction was cached" and reads["S001"] == 3 * N_FRAMES
    assert_same(other, q_integration(sample, False, hot_pixel_mad=5.0))


@pytest.mark.parametrize("overrides, message", [
    ({"angle_mode": "specify", "sectors": []}, "needs at least one sector"),
    ({"bg_sample_id": "S999"}, "is not a sample of proposal"),
])
def test_a_q_integration_that_cannot_be_cooked_leaves_the_reconstruction_step_alone(tmp_path, small_blocks, reads,
                                                                                    overrides, message):
    repo, _ = tree(tmp_path, ORDINARY)
    sample = repo[PROPOSAL]["S001"]
    rec = sample.cook("reconstruction", **overrides)
    assert reads["S001"] == 3 * N_FRAMES
    np.testing.assert_array_equal(rec.image.values, sample.cook("reconstruction", use_cache=False).image.values)
    with pytest.raises(BadInput, match=message):
        sample.cook("q_integration", **overrides)


def independent_counts(tmp_path, params, keys, seed=11):
    """Every run's counts replaced by a model of their own (not the simulator's): a flat level, a
    ring 20 px out, a direct beam of σ = 1.3 px and 2·10⁴ counts per frame, a dip in the drive's
    middle, Poisson noise; four hot pixels at 20 x the median rate, the same counts in every
    frame, in every run (the issue's held-out case)."""
    layout = params.sensor_layout
    rng = np.random.default_rng(seed)
    hot = None
    for key in [BACKGROUND] + keys:
        folder = tmp_path / PROPOSAL / key / "train_integrated"
        for k in range(layout.n_sensors):
            shape = np.load(folder / f"sensor_{k}.npy", mmap_mode="r").shape
            y, x = np.divmod(sensor_pixels(layout, k), layout.canvas_shape[1])
            r = np.hypot(x - params.centre_xy[0], y - params.centre_xy[1]).reshape(shape[1:])
            rate = 0.3 + 2.0 * np.exp(-((r - 20) / 6) ** 2) + 2e4 / (2 * np.pi * 1.3**2) * np.exp(-r**2 / (2 * 1.3**2))
            dip = 1 - 0.3 / (1 + (np.linspace(-1, 1, shape[0]) / 0.05) ** 2)
            counts = rng.poisson(rate[None] * dip[:, None, None]).astype(np.uint32)
            if k == 0:
                hot = rng.choice(np.flatnonzero((r > 25).ravel()), 4, replace=False) if hot is None else hot
                counts.reshape(shape[0], -1)[:, hot] = round(20 * max(1.0, float(np.median(counts.mean(axis=0)))))
            np.save(folder / f"sensor_{k}.npy", counts)


@pytest.mark.parametrize("mode", ["subtract", "cut"])
def test_an_independent_model_with_ordinary_hot_pixels_reads_each_run_once(tmp_path, small_blocks, reads, mode):
    """With the default centroid the probe's centre is the run's within 0.01 px; the app's cut
    centroid jumps when a pixel's counts cross its threshold and sends samples to a second read."""
    params = image_params(n_frames=N_FRAMES)
    keys = write_runs(tmp_path, params, (5, 6, 7))
    independent_counts(tmp_path, params, keys)
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    for key in [BACKGROUND] + keys:
        repo[PROPOSAL].spice.seed("roi", anchor=key, auto_half_size=[8, 8])
    prop = repo[PROPOSAL]
    passes = [prop[key].cook("q_integration", centroid_threshold_mode=mode).attrs["passes"] for key in keys]
    if mode == "subtract":
        assert [p["path"] for p in passes] == ["fused"] * 3, passes
        assert sum(reads.values()) / (3 * N_FRAMES) == 4.0, dict(reads)
        assert [p["background"] for p in passes] == ["read", "shared", "shared"]
        for key in keys:
            assert_same(prop[key].cook("q_integration"), q_integration(prop[key], False))
    else:
        separate = [p for p in passes if p["path"] == "separate"]
        assert separate and all(p["reason"].startswith("the centre (") for p in separate), passes
