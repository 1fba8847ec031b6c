"""SensorLayout, combine, coverage and split (eqegs_repo.kernels.sensors)."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.sensors import SensorLayout, combine, coverage, split


def test_default_layout_is_three_strips_of_728_by_128():
    layout = SensorLayout.default()
    assert layout.n_sensors == 3
    assert layout.sensor_shape == (728, 128)
    assert layout.canvas_shape == (728, 384)
    assert layout.offsets == ((0, 0), (0, 128), (0, 256))
    assert layout.flips == ("none",) * 3 and layout.mode == "tile"
    assert (coverage(layout) == 1).all()


def test_tile_places_sensor_k_at_columns_k_times_cols():
    layout = SensorLayout.strips(n_sensors=3, sensor_shape=(4, 2))
    blocks = [np.full((2, 4, 2), k + 1, dtype=np.uint16) for k in range(3)]
    canvas = combine(blocks, layout=layout)
    assert canvas.dtype == np.float32 and canvas.shape == (2, 4, 6)
    np.testing.assert_array_equal(canvas[0, 0], [1, 1, 2, 2, 3, 3])


def test_round_trip_with_flips_and_gaps():
    layout = SensorLayout(
        n_sensors=3,
        sensor_shape=(5, 3),
        mode="tile",
        offsets=[(0, 0), (1, 4), (6, 1)],
        flips=["ud", "lr", "rot180"],
        canvas_shape=(11, 8),
    )
    rng = np.random.default_rng(1)
    blocks = [rng.integers(0, 1000, size=(4, 5, 3)).astype(np.uint32) for _ in range(3)]
    canvas = combine(blocks, layout=layout)
    # The flip really is applied: sensor 0 flipped up-down sits at rows 0..4, cols 0..2.
    np.testing.assert_array_equal(canvas[:, 0:5, 0:3], blocks[0][:, ::-1, :])
    np.testing.assert_array_equal(canvas[:, 6:11, 1:4], blocks[2][:, ::-1, ::-1])
    back = split(canvas, layout=layout)
    for original, recovered in zip(blocks, back):
        np.testing.assert_array_equal(original, recovered)
    cov = coverage(layout)
    assert cov.sum() == 3 * 15
    assert (canvas[:, cov == 0] == 0).all()  # gaps stay empty
    # And split∘combine on a canvas that is zero in the gaps is the identity.
    np.testing.assert_array_equal(combine(split(canvas, layout=layout), layout=layout), canvas)


def test_sum_mode_overlays_and_split_shares_counts():
    layout = SensorLayout(
        n_sensors=2, sensor_shape=(3, 3), mode="sum", offsets=[(0, 0), (1, 1)], flips=["none", "lr"], canvas_shape=(4, 4)
    )
    a = np.arange(9, dtype=float).reshape(1, 3, 3)
    b = np.full((1, 3, 3), 10.0)
    canvas = combine([a, b], layout=layout)
    assert canvas[0, 1, 1] == a[0, 1, 1] + 10.0
    assert canvas[0, 0, 0] == a[0, 0, 0] and canvas[0, 3, 3] == 10.0
    cov = coverage(layout)
    assert cov[1, 1] == 2 and cov[0, 3] == 0
    np.testing.assert_allclose(combine(split(canvas, layout=layout), layout=layout), canvas, rtol=1e-6)


def test_combine_streams_into_out_and_checks_shapes():
    layout = SensorLayout.strips(n_sensors=2, sensor_shape=(3, 2))
    blocks = [np.ones((5, 3, 2)), 2 * np.ones((5, 3, 2))]
    out = np.full((5, 3, 4), 99, dtype=np.float32)
    assert combine(blocks, layout=layout, out=out) is out
    assert out[0, 0].tolist() == [1, 1, 2, 2]
    with pytest.raises(BadInput, match="float32"):
        combine(blocks, layout=layout, out=np.zeros((5, 3, 4)))
    with pytest.raises(BadInput, match="sensor 1 block has 4 frames"):
        combine([np.ones((5, 3, 2)), np.ones((4, 3, 2))], layout=layout)
    with pytest.raises(BadInput, match="expected 2 sensor blocks"):
        combine(blocks[:1], layout=layout)
    with pytest.raises(BadInput, match=r"shape \(frames, 3, 2\)"):
        combine([np.ones((5, 2, 3))] * 2, layout=layout)
    with pytest.raises(BadInput, match="canvas block"):
        split(np.ones((5, 3, 5)), layout=layout)


def test_mapping_round_trip_and_validation_errors():
    layout = SensorLayout.default()
    mapping = layout.to_mapping()
    assert mapping["offsets"] == [[0, 0], [0, 128], [0, 256]]
    assert SensorLayout.from_mapping(mapping) == layout
    bad = dict(mapping, mode="stack")
    with pytest.raises(BadInput, match="mode must be one of"):
        SensorLayout.from_mapping(bad)
    with pytest.raises(BadInput, match="overlap"):
        SensorLayout.from_mapping(dict(mapping, offsets=[[0, 0], [0, 100], [0, 256]]))
    with pytest.raises(BadInput, match="does not fit"):
        SensorLayout.from_mapping(dict(mapping, canvas_shape=[728, 380]))
    with pytest.raises(BadInput, match=r"flips\[2\]"):
        SensorLayout.from_mapping(dict(mapping, flips=["none", "none", "rot90"]))
    with pytest.raises(BadInput, match="offsets must list 3"):
        SensorLayout.from_mapping(dict(mapping, offsets=[[0, 0]]))
    with pytest.raises(BadInput, match="missing fields"):
        SensorLayout.from_mapping({k: v for k, v in mapping.items() if k != "flips"})
    with pytest.raises(BadInput, match="schema_version"):
        SensorLayout.from_mapping(dict(mapping, schema_version=2))
    with pytest.raises(BadInput, match="sensor_shape"):
        SensorLayout.strips(n_sensors=3, sensor_shape=(0, 5))
