"""Q-resolved dynamics (docs/e-spectrum-and-isf.md#q-resolved-dynamics): many q ranges from one
q integration, each equal to a cook of that range alone, bad ranges refused by name, and the
τ(q) law recovered from a simulated τ ∝ q^−2.9."""
import numpy as np
import pytest

from eqegs_repo import Repository
from eqegs_repo.cooking.q_resolved import tau_q_law
from eqegs_repo.errors import BadInput
from eqegs_repo.simulate import demo, synthetic
from tests.helpers.cooktrees import PROPOSAL

EXPONENT = 2.9
RANGES = [(8.0 + 2 * i, 10.0 + 2 * i) for i in range(5)]  # nm^-1: tau from about 220 to 37 ns


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """One tiny sample (128 frames over +-4 mm/s) with tau = 100 ns (q/12)^-2.9."""
    base = tmp_path_factory.mktemp("qres")
    tree = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="tiny", seed=1, samples_per_proposal=1,
                                tau_exponent=EXPONENT, v_max_mm_s=4.0)
    truth = synthetic.load_truth(base, tree.account, PROPOSAL, "S001")
    repo = Repository(tree.url(), spice_url=f"memory://qres-{base.name}", cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=100)
    return repo[PROPOSAL]["S001"]


@pytest.fixture(scope="module")
def resolved(sample):
    return sample.q_resolved(RANGES)


def test_injected_exponent_is_recovered_within_its_error(resolved):
    law = tau_q_law(resolved)
    assert law.n_points == 5
    assert 0.05 < law.n_error < 0.5  # an error that means something
    assert abs(law.n - EXPONENT) / law.n_error < 3
    assert abs(law.n - 2.0) / law.n_error > 3  # the simulator's default exponent is told apart
    # tau0 at the weighted reference q agrees with the injected law there
    truth = 100.0 * (law.q0_nm / 12.0) ** -EXPONENT
    assert abs(law.tau0_ns - truth) / law.tau0_error_ns < 3
    assert law.covariance.shape == (2, 2) and abs(law.covariance[0, 1]) < 1e-9 * law.tau0_error_ns  # q0 decorrelates


def test_every_range_equals_a_cook_of_that_range_alone(sample, resolved):
    for index in (0, 3):
        q_min, q_max = RANGES[index]
        single = sample.cook(q_min=q_min, q_max=q_max)
        row = resolved.isel(q_range=index)
        assert row.tau.item() == single.tau.item() and row.f_q.item() == single.f_q.item()
        assert row.tau_error.item() == single.tau_error.item()
        n = single.sizes["t"]
        np.testing.assert_array_equal(row.isf.values[:n], single.isf.values)
        np.testing.assert_array_equal(row.t.values[:n], single.t.values)
        assert row.seed.item() == single.attrs["seed"]


def test_each_range_carries_the_q_it_belongs_to(sample, resolved):
    qds = sample.cook("q_integration")
    q = qds.q.values
    for index, (q_min, q_max) in enumerate(RANGES):
        row = resolved.isel(q_range=index)
        single = sample.cook(q_min=q_min, q_max=q_max)
        inside = (q >= q_min) & (q <= q_max) & (qds.npix.values > 0)
        weight = qds.intensity.values[single.kept.values.astype(bool)].sum(axis=0)[inside]  # kept frames only
        expected = np.sum(weight * qds.q_mean.values[inside]) / weight.sum()
        assert row.q_weighted.item() == pytest.approx(expected, rel=1e-12)
        assert row.q_weighted.item() != pytest.approx(np.mean(qds.q_mean.values[inside]), rel=1e-6)  # weighted
        assert row.q_pixel_min.item() == qds.q_pixel_min.values[inside].min() < q[inside][0]
        assert row.q_pixel_max.item() == qds.q_pixel_max.values[inside].max() > q[inside][-1]
        assert row.q_pixel_min.item() < row.q_weighted.item() < row.q_pixel_max.item()
        assert (row.q_min.item(), row.q_max.item()) == (q_min, q_max)
        assert row.n_bins.item() == inside.sum()
        # the same rule, the same numbers, in the E spectrum step of that range alone
        for name in ("q_weighted", "q_pixel_min", "q_pixel_max", "q_min", "q_max"):
            assert single.attrs[name] == row[name].item() == single[name].item()
            assert row[name].attrs["units"] == single[name].attrs["units"] == "nm^-1"
    assert resolved.attrs["q_weighted_by"] == ["counts"] * len(RANGES)


def test_an_integer_splits_the_resolved_q_range(sample):
    ds = sample.q_resolved(2)  # the seeded q range 11..13
    assert ds.q_min.values.tolist() == [11.0, 12.0] and ds.q_max.values.tolist() == [12.0, 13.0]


@pytest.mark.parametrize("ranges, words", [
    ([(10.0, 12.0), (14.0, 12.0)], "range 1 [14, 12] nm^-1: q_min must be below q_max"),
    ([(12.0, 12.0)], "range 0 [12, 12]"),
    ([(10.0, 12.0), (24.0, 40.0)], "range 1 [24, 40] nm^-1: outside the measured q"),
    ([(12.0, 12.1)], "range 0 [12, 12.1] nm^-1: holds no q bin centre"),
    ([], "ranges is empty"),
    (["ab"], "pairs"),
])
def test_bad_ranges_are_one_error_naming_the_range(sample, ranges, words):
    with pytest.raises(BadInput) as caught:
        sample.q_resolved(ranges)
    assert words in str(caught.value)


def test_figures_draw_the_law_and_every_range(resolved):
    pytest.importorskip("matplotlib")
    from eqegs_repo import figures

    law = tau_q_law(resolved)
    ax = figures.tau_of_q(resolved, law).axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    x, y = ax.lines[-1].get_data()
    np.testing.assert_allclose(y, law.tau(x))
    assert any(f"n = {law.n:.2f} ± {law.n_error:.2f}" in text.get_text() for text in ax.get_legend().get_texts())
    isf_ax = figures.isf_of_q(resolved).axes[0]
    assert len(isf_ax.containers) == len(RANGES) and len(isf_ax.lines) >= 2 * len(RANGES)
    with pytest.raises(BadInput, match="tau_of_q: the dataset lacks tau"):
        figures.tau_of_q(resolved.drop_vars(["tau"]))


def test_beta_shared_across_the_ranges_or_fixed(sample, resolved):
    shared = sample.q_resolved(RANGES, beta="shared")
    assert shared.attrs["beta_mode"] == "shared" and np.unique(shared.beta.values).size == 1
    assert abs(shared.beta[0].item() - 1.0) < 3 * shared.beta_error[0].item()  # the simulated ISF is exponential
    fixed = sample.q_resolved(RANGES, beta=1.0)
    np.testing.assert_allclose(fixed.tau.values, resolved.tau.values, rtol=1e-4)  # beta 1: the exp fit
    np.testing.assert_array_equal(fixed.isf.values, resolved.isf.values)
    assert resolved.attrs["beta_mode"] == "per range (fit_model)"
    with pytest.raises(BadInput, match="beta must be 'shared' or a number in \\[0.05, 3\\].*got 'free'"):
        sample.q_resolved(RANGES, beta="free")
