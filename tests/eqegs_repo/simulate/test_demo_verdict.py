"""The demo's verdict (docs/synthetic.md#the-demo): its noise-free copy is the same samples
without counting noise, and its summary says what 'within 2 sigma' means and whether the
settings themselves are biased."""
import numpy as np
import pandas as pd
import pytest

from eqegs_repo.simulate import demo, synthetic


def test_the_noise_free_copy_holds_the_expected_counts_of_the_same_runs(tmp_path):
    models = {}
    demo.write_tree(tmp_path, preset="tiny", seed=5, sample_transmission=0.6, background_model="unattenuated",
                    models=models)
    assert len(models) == 7  # two backgrounds and five samples
    repo = demo.noise_free_copy(tmp_path, models=models)
    assert len(models) == 7  # the copy built none again
    copy = tmp_path / demo.NOISE_FREE_DIR
    assert repo.keys() == ["2025A1234", "2025B5678"] and repo["2025A1234"].keys() == ["S000_noise", "S001", "S002",
                                                                                           "S003"]
    truth, exact = (synthetic.load_truth(base, synthetic.DEFAULT_ACCOUNT, "2025B5678", "S002") for base in (tmp_path, copy))
    assert exact.record["seed"] == truth.record["seed"] and exact.params.noise_free and exact.params.dtype == "float32"
    assert exact.params.background_model == "unattenuated" and exact.params.sample_transmission == 0.6
    assert exact.params.n_frames == truth.params.n_frames == 96 and exact.params.tau0_ns == truth.params.tau0_ns
    raw = "UserData/u0000000/EQEGS/2025B5678/S002/train_integrated"
    noisy, mu = (np.load(base / raw / "sensor_1.npy").astype(float) for base in (tmp_path, copy))
    np.testing.assert_array_equal(np.load(tmp_path / raw / "velocity.npy"), np.load(copy / raw / "velocity.npy"))
    assert np.any(mu != np.round(mu))  # expected counts, not draws
    pulls = (noisy - mu)[mu > 20] / np.sqrt(mu[mu > 20])
    assert abs(pulls.mean()) < 0.02 and pulls.std() == pytest.approx(1.0, abs=0.03)  # the noisy run is Poisson(mu)
    seeded = repo["2025B5678"].spice.history("q_integration")[-1].data
    assert seeded["bg_scale_mode"] == "manual"  # the scale right for the unattenuated model
    assert demo.noise_free_copy(tmp_path).keys() == repo.keys()  # found, not written again


def table(tau_pulls, tau_bias_sigma=0.05):
    n = len(tau_pulls)
    return pd.DataFrame({"tau_dev_sigma": tau_pulls, "f_q_dev_sigma": [0.0] * n, "tau_bias_pct": [0.1] * n,
                         "tau_bias_sigma": [tau_bias_sigma] * n, "f_q_bias": [0.001] * n, "f_q_bias_sigma": [0.1] * n})


def test_the_summary_says_what_within_two_sigma_means_and_judges_the_bias():
    lines = demo.recovery_summary(table([0.5, -2.5, 1.0, 0.1, -1.9]))
    assert lines[0] == "recovered within 2 sigma: tau 4/5, f_q 5/5"
    assert "about 4.8 of 5" in lines[1] and "4 of 5 happens in 19 % of honest runs, fewer in 2 %" in lines[1]
    assert "far below 1 sigma, so the noisy fits' deviations are noise" in lines[2]
    biased = demo.recovery_summary(table([3.0] * 10, tau_bias_sigma=-0.8))
    assert "about 9.5 of 10" in biased[1] and "9 of 10 happens in 30 % of honest runs, fewer in 7 %" in biased[1]
    assert "(0.80 sigma)" in biased[2] and "these settings bias the fit" in biased[2]
    assert len(demo.recovery_summary(table([0.1]).drop(columns=["tau_bias_sigma"]))) == 2  # no noise-free columns


def test_with_noise_free_lines_the_copy_up_by_sample():
    noisy = pd.DataFrame({"proposal": ["P", "P"], "sample": ["S1", "S2"], "tau_ns": [90.0, 55.0], "tau_err": [5.0, 2.0],
                          "tau_true": [100.0, 50.0], "f_q": [0.7, 0.7], "f_q_err": [0.01, 0.02],
                          "f_q_true": [0.70, 0.69]})
    free = pd.DataFrame({"proposal": ["P", "P"], "sample": ["S2", "S1"], "tau_ns": [49.0, 101.0], "f_q": [0.70, 0.71]})
    judged = demo.with_noise_free(noisy, free)
    assert judged["tau_noise_free"].tolist() == [101.0, 49.0]
    np.testing.assert_allclose(judged["tau_bias_pct"], [1.0, -2.0])
    np.testing.assert_allclose(judged["tau_bias_sigma"], [0.2, -0.5])
    np.testing.assert_allclose(judged["f_q_bias_sigma"], [1.0, 0.5])


def test_the_truth_of_a_fit_holds_exactly_the_pixels_its_bins_summed(tmp_path, monkeypatch):
    """demo.truth_of_fit takes the pixels the result's bins hold (around the centre it found),
    each at its true q."""
    from eqegs_repo import Repository

    tree = synthetic.write_tree(tmp_path, proposals=("2025A1234",), preset="tiny", seed=3, samples_per_proposal=1,
                                n_frames=256)
    truth = synthetic.load_truth(tmp_path, tree.account, "2025A1234", "S001")
    prop = Repository(tree.url(), spice_url="memory://truth-bins", cache_url=False)["2025A1234"]
    demo.seed_spice(prop, truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=20)
    ds, qds = prop["S001"].cook("e_spectrum_and_isf"), prop["S001"].cook("q_integration")
    taken = []
    isf_of_pixels = synthetic.SampleTruth._isf_of_pixels
    monkeypatch.setattr(synthetic.SampleTruth, "_isf_of_pixels",
                        lambda self, params, geometry, inside, t, empty: taken.append(inside) or isf_of_pixels(
                            self, params, geometry, inside, t, empty))
    tau, _ = demo.truth_of_fit(ds, truth)
    binned = (qds.q.values >= ds.attrs["q_min"]) & (qds.q.values <= ds.attrs["q_max"])
    (inside,) = taken
    used = inside & qds.mask.values
    assert inside.sum() == used.sum() == qds.npix.values[binned].sum() > 0  # the pixels of the bins used, only those
    assert np.isfinite(tau)
