"""One read per run: the fused reconstruction + q integration equals the separate passes, and the
background is read once for all the samples that share it."""
import collections
import json
import threading

import numpy as np
import pytest

from eqegs_repo.cooking import cook, passes, tracking
from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.errors import BadSample
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params, repository, seed_spice, write_runs

N_FRAMES = 1024
BLOCK = 64  # frames per block in these tests; the probe is 2 blocks: frames 0-63 and 960-1023
PROBE = set(range(0, 64)) | set(range(960, 1024))


def use_blocks(monkeypatch, frames):
    """Blocks of ``frames`` frames of the tiny preset (3 sensors of 64 x 16, uint16), a probe of two."""
    frame_bytes = 3 * 64 * 16 * 2
    monkeypatch.setattr(passes, "BLOCK_BYTES", frames * frame_bytes)
    monkeypatch.setattr(passes, "PROBE_BYTES", 2 * frames * frame_bytes)


@pytest.fixture
def small_blocks(monkeypatch):
    use_blocks(monkeypatch, BLOCK)


def count_reads(monkeypatch, key=lambda path: path):
    """A Counter of the frames read, by ``key(path)`` of each raw file, counted at the reader."""
    counts = collections.Counter()
    original = NpyFile.read_frames
    lock = threading.Lock()

    def counting(self, start, stop, out=None):
        with lock:  # the lanes read in parallel
            counts[key(self.path)] += stop - start
        return original(self, start, stop, out)

    monkeypatch.setattr(NpyFile, "read_frames", counting)
    return counts


@pytest.fixture
def reads(monkeypatch):
    """Frames read per raw file."""
    return count_reads(monkeypatch)


def tree(tmp_path, seeds=(5,)):
    params = image_params(n_frames=N_FRAMES)
    keys = write_runs(tmp_path, params, seeds)
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    return repo, keys


def q_integration(sample, fuse, use_cache=False, **overrides):
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=sample.key)
    return Cooker(sample, params, use_cache=use_cache, fuse=fuse).dataset("q_integration")


def assert_same(a, b):
    for name in list(a.data_vars) + list(a.coords):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for name in ("centre_x", "centre_y", "centre", "background", "n_pixels_used"):
        assert json.dumps(a.attrs[name], sort_keys=True) == json.dumps(b.attrs[name], sort_keys=True), name


def sensor_path(tmp_path, sample, k):
    return tmp_path / PROPOSAL / sample / "train_integrated" / f"sensor_{k}.npy"


def edit_sensor(tmp_path, sample, k, edit):
    """Change the counts of one sensor file in place (``edit(array)``)."""
    counts = np.load(sensor_path(tmp_path, sample, k), mmap_mode="r+")
    edit(counts)
    counts.flush()
    del counts


@pytest.mark.parametrize("overrides", [
    {},
    {"angle_mode": "specify", "sectors": [[300.0, 45.0], [100.0, 170.0]], "radial_bin_px": 0.5},
    {"hot_pixel_mad": None, "direct_exclusion_halfwidth": 3, "forward_box_halfwidth": 7},
    {"centre_method": "gauss2d"},
])
def test_fused_equals_separate_with_the_sample_read_once(tmp_path, small_blocks, reads, overrides):
    repo, _ = tree(tmp_path)
    # strong hot pixels (sensor 0 and 2): the probe sees them and tracks them
    edit_sensor(tmp_path, "S001", 0, lambda c: c.__setitem__((slice(None), 40, 3), c[:, 40, 3] + 300))
    edit_sensor(tmp_path, "S001", 2, lambda c: c.__setitem__((slice(None), 10, 12), c[:, 10, 12] + 200))
    sample = repo[PROPOSAL]["S001"]
    fused = q_integration(sample, True, **overrides)
    info = fused.attrs["passes"]
    assert info["path"] == "fused" and info["sample_reads"] == 1 and info["reason"] is None
    assert info["probe_frames"] == 2 * BLOCK and info["tracked_pixels"] > 0
    shift = np.hypot(info["probe_centre"][0] - fused.attrs["centre_x"], info["probe_centre"][1] - fused.attrs["centre_y"])
    assert 0 < shift <= tracking.MARGIN_PX  # the probe's centre was not the run's: resolved exactly
    sample_files = {str(sensor_path(tmp_path, "S001", k)) for k in range(3)}
    assert {p: n for p, n in reads.items() if p in sample_files} == dict.fromkeys(sample_files, N_FRAMES)
    if overrides.get("hot_pixel_mad", 10) is not None:
        assert not fused.mask.values[40, 3] and not fused.mask.values[10, 32 + 12]
    separate = q_integration(sample, False, **overrides)
    assert separate.attrs["passes"]["sample_reads"] == 2
    assert_same(fused, separate)


def test_a_hot_pixel_the_probe_missed_is_subtracted_after_a_partial_read(tmp_path, small_blocks, reads, monkeypatch):
    monkeypatch.setattr(cook, "WORKERS", 1)  # one lane: the blocks read before the checkpoint are known
    repo, _ = tree(tmp_path)

    def hot_outside_the_probe(counts):
        counts[64:960, 50, 5] += 400
        # ordinary in the probe (its neighbour's counts): neither hot nor dead there, so not tracked
        counts[sorted(PROBE), 50, 5] = counts[sorted(PROBE), 50, 4]

    edit_sensor(tmp_path, "S001", 1, hot_outside_the_probe)
    sample = repo[PROPOSAL]["S001"]
    fused = q_integration(sample, True)
    info = fused.attrs["passes"]
    # the pixel was summed, watched from a checkpoint on, and its counts in the blocks read before
    # were read again (those blocks only): subtracted exactly, in one read and a part
    assert info["path"] == "fused" and info["reason"] is None and info["removed_pixels"] == 1
    # the probe (0-63, 960-1023) and the first block after it (64-127), then the checkpoint
    assert info["reread_frames"] == 3 * BLOCK and info["sample_reads"] == 1 + 3 * BLOCK / N_FRAMES
    assert "read again" in info["reread_reason"] and info["watched_pixels"] >= 1
    assert reads[str(sensor_path(tmp_path, "S001", 1))] == N_FRAMES + info["reread_frames"]
    assert not fused.mask.values[50, 16 + 5]
    assert_same(fused, q_integration(sample, False))


def test_a_dead_pixel_resolves_in_the_one_read(tmp_path, small_blocks, reads):
    repo, _ = tree(tmp_path)
    edit_sensor(tmp_path, "S001", 1, lambda c: c.__setitem__((slice(None), 50, 5), 0))  # reads 0 always
    sample = repo[PROPOSAL]["S001"]
    fused = q_integration(sample, True)
    assert fused.attrs["passes"]["path"] == "fused" and fused.attrs["passes"]["sample_reads"] == 1
    assert reads[str(sensor_path(tmp_path, "S001", 1))] == N_FRAMES
    assert fused.attrs["n_dead_pixels"] >= 1 and not fused.mask.values[50, 16 + 5]
    assert_same(fused, q_integration(sample, False))


def test_a_beam_that_moves_after_the_probe_means_a_second_read(tmp_path, small_blocks):
    repo, _ = tree(tmp_path)
    # a bright spot next to the beam (x 23.8, y 26.4: sensor 1, column 7) outside the probe frames
    edit_sensor(tmp_path, "S001", 1, lambda c: c.__setitem__((slice(64, 960), 27, 9), 60_000))
    sample = repo[PROPOSAL]["S001"]
    fused = q_integration(sample, True)
    info = fused.attrs["passes"]
    assert info["path"] == "separate" and "more than 0.01 px" in info["reason"]
    assert_same(fused, q_integration(sample, False))


def test_bbox_splitting_and_a_cached_reconstruction_use_the_separate_integration(tmp_path, small_blocks, reads):
    repo, _ = tree(tmp_path)
    sample = repo[PROPOSAL]["S001"]
    bbox = q_integration(sample, True, pixel_splitting="bbox")
    assert bbox.attrs["passes"]["path"] == "separate" and "bbox" in bbox.attrs["passes"]["reason"]
    assert_same(bbox, q_integration(sample, False, pixel_splitting="bbox"))
    sample.cook("reconstruction")  # leaves the sums of the q integration its spice foresees
    reads.clear()
    after = sample.cook("q_integration", radial_bin_px=2.0).attrs["passes"]  # not foreseen: read again
    assert after["path"] == "separate" and after["sample_reads"] == 1
    assert after["reason"] == "the reconstruction was cached"
    assert set(reads.values()) == {N_FRAMES}


def test_fused_chain_caches_both_steps_with_their_provenance(tmp_path, small_blocks, reads):
    repo, _ = tree(tmp_path)
    sample = repo[PROPOSAL]["S001"]
    ds = sample.cooked
    assert sample.cache_status() == dict.fromkeys(("reconstruction", "q_integration", "e_spectrum_and_isf"), "fresh")
    rec = sample.cook("reconstruction")
    assert rec.attrs["fingerprint"] and rec.attrs["spice"]["sensor_layout"]
    reads.clear()
    again = repository(tmp_path)[PROPOSAL]["S001"].cooked
    assert not reads and again.tau.item() == ds.tau.item()
    separate = Cooker(sample, StepParameters(sample.spice, {}), use_cache=False, fuse=False)
    assert separate.dataset("e_spectrum_and_isf").tau.item() == ds.tau.item()
    np.testing.assert_array_equal(separate.dataset("reconstruction").image.values, rec.image.values)


def test_samples_sharing_a_background_read_it_once(tmp_path, small_blocks, reads):
    repo, keys = tree(tmp_path, seeds=(5, 6, 7))
    prop = repo[PROPOSAL]
    cooked = {key: prop[key].cooked for key in keys}
    sizes = {p: N_FRAMES for p in reads}
    assert reads == sizes  # every file of the 3 samples and of the background read once
    assert sum(reads.values()) == (len(keys) + 1) * 3 * N_FRAMES
    infos = [prop[key].cook("q_integration").attrs["passes"] for key in keys]
    assert [i["background"] for i in infos] == ["read", "shared", "shared"]
    centres = {(prop[k].cook("q_integration").attrs["centre_x"], prop[k].cook("q_integration").attrs["centre_y"])
               for k in keys}
    assert len(centres) == 3  # three centres, one background integration resolved to each
    for key in keys:
        alone = q_integration(prop[key], False)
        assert_same(prop[key].cook("q_integration"), alone)
        assert cooked[key].attrs["fingerprint"] == prop[key].cooked.attrs["fingerprint"]


def test_a_sample_far_from_the_shared_centre_reads_the_background_again(tmp_path, reads):
    repo, keys = tree(tmp_path, seeds=(5, 6))
    prop = repo[PROPOSAL]
    first = prop["S001"].cook("q_integration")
    moved = prop["S002"].cook("q_integration", centre_method="manual", centre_x=first.attrs["centre_x"] + 0.5,
                              centre_y=first.attrs["centre_y"])
    assert moved.attrs["passes"]["background"] == "read"
    background = [p for p in reads if f"/{BACKGROUND}/" in p]
    assert all(reads[p] == 2 * N_FRAMES for p in background)
    assert_same(moved, q_integration(prop["S002"], False, centre_method="manual",
                                     centre_x=first.attrs["centre_x"] + 0.5, centre_y=first.attrs["centre_y"]))


def test_signed_counts_give_the_same_result_and_a_negative_one_is_named_by_both_paths(tmp_path, small_blocks):
    repo, _ = tree(tmp_path)
    sample = repo[PROPOSAL]["S001"]
    path = sensor_path(tmp_path, "S001", 2)
    np.save(path, np.load(path).astype(np.int64))  # non-negative int64 counts: read as the uint16 ones
    fused = q_integration(sample, True)
    assert fused.attrs["passes"]["path"] == "fused"
    assert_same(fused, q_integration(sample, False))
    edit_sensor(tmp_path, "S001", 2, lambda c: c.__setitem__((500, 3, 7), -5))  # outside the probe
    # one -5 once changed tau silently; both paths now stop at it, naming the file and the frame
    for fuse in (True, False):
        with pytest.raises(BadSample, match=rf"^{path}: frame 500, pixel \(row 3, col 7\) holds -5; counts must "
                                            r"be >= 0 \(1 bad values in frames \d+\.\.\d+\)$"):
            q_integration(sample, fuse)
