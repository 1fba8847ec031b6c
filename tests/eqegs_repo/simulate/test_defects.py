"""Pixel defects written into a synthetic sample's files (eqegs_repo.simulate.defects)."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.simulate.defects import add_pixel_defects
from tests.helpers.cooktrees import PROPOSAL, image_params, write_runs


def test_defects_are_written_where_they_say(tmp_path):
    base = str(tmp_path)
    write_runs(base, image_params(n_frames=64), (5,))
    folder = f"{base}/{PROPOSAL}/S001"
    before = [np.load(f"{folder}/train_integrated/sensor_{k}.npy") for k in range(3)]
    placed = add_pixel_defects(folder, [("hot", 50, 1), ("dead", 0, 1), ("late", 20, 1)], seed=1)
    after = [np.load(f"{folder}/train_integrated/sensor_{k}.npy") for k in range(3)]
    hot, dead, late = placed
    assert after[dead["sensor"]][:, dead["row"], dead["col"]].sum() == 0 and dead["frames"] == 64
    gain = after[hot["sensor"]][:, hot["row"], hot["col"]].astype(int) - before[hot["sensor"]][:, hot["row"], hot["col"]]
    assert gain.min() >= 0 and gain.mean() > 10 * np.median(before[0])
    late_gain = (after[late["sensor"]][:, late["row"], late["col"]].astype(int)
                 - before[late["sensor"]][:, late["row"], late["col"]])
    assert not late_gain[:32].any() and 0 < late["frames"] <= 32
    changed = sum(int((a != b).any(axis=0).sum()) for a, b in zip(after, before))
    assert changed == 3
    with pytest.raises(BadInput, match="kind must be one of"):
        add_pixel_defects(folder, [("warm", 2, 1)])


def test_defects_keep_off_the_pixels_to_avoid(tmp_path):
    write_runs(str(tmp_path), image_params(n_frames=16), (5,))
    avoid = np.ones((3, 64, 16), bool)
    avoid[2, 10:12, 3] = False
    placed = add_pixel_defects(tmp_path / PROPOSAL / "S001", [("dead", 0, 2)], avoid=avoid)
    assert {(p["sensor"], p["row"], p["col"]) for p in placed} == {(2, 10, 3), (2, 11, 3)}
    with pytest.raises(BadInput, match="leaving 3 pixels free"):
        add_pixel_defects(tmp_path / PROPOSAL / "S001", [("dead", 0, 3)], avoid=avoid)
