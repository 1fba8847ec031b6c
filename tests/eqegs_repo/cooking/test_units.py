"""Every variable and coordinate of the raw and cooked datasets says its unit and meaning."""
import pytest

from eqegs_repo.cooking.datasets import DIMENSIONLESS
from eqegs_repo.step_table import names as step_names

STEPS = step_names()
from tests.helpers.cooktrees import PROPOSAL, seeded_tree


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return seeded_tree(tmp_path_factory.mktemp("units"))[PROPOSAL]["S001"]


def unlabelled(ds):
    """``name: missing attr`` for each variable or coordinate without units or long_name."""
    return [f"{name}: {attr}" for name, variable in ds.variables.items() for attr in ("units", "long_name")
            if not isinstance(variable.attrs.get(attr), str) or (attr == "long_name" and not variable.attrs[attr])]


def test_raw_data_has_units_long_names_and_pixel_coordinates(sample):
    raw = sample.raw
    assert unlabelled(raw) == []
    assert set(raw.coords) == {"sensor", "frame", "row", "col"}
    assert raw.row.attrs["units"] == raw.col.attrs["units"] == "px" and raw.velocity.attrs["units"] == "a.u."


@pytest.mark.parametrize("step", STEPS)
def test_every_cooked_variable_and_coordinate_has_units_and_a_long_name(sample, step):
    ds = sample.cook(step)
    assert unlabelled(ds) == []
    assert sample.cache_status()[step] == "fresh" and unlabelled(sample.cook(step)) == []  # from the cache
    if step == "e_spectrum_and_isf":
        assert {ds[name].attrs["units"] for name in ("f_q", "beta", "chi2_red", "isf")} == {DIMENSIONLESS}
        assert ds.tau.attrs["units"] == "ns" and ds.forward_sigma.attrs["long_name"]
