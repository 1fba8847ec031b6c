"""The simulator's background model chosen by name, and the background scale right for each
(docs/synthetic.md#the-background-model): with a sample of transmission 0.5 in a strongly
scattering cell, ``cell_attenuated`` (the cell scattering passes the sample) is recovered by
``bg_scale_mode`` ``forward_ratio``, ``unattenuated`` by ``manual`` with the background run's
scale; the other mode misses f_q by several hundredths. Noise-free runs, so the numbers are exact."""
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.simulate import demo, synthetic
from tests.helpers import cooktrees

TRANSMISSION = 0.5
CELL = {"c0": 2000.0, "dark": 0.0}
"""A cell scattering about a quarter of the sample at 12 nm⁻¹; no dark counts (a photon-counting
detector: the dark is not attenuated by the sample, so no scale removes it with τ_s < 1)."""


def recovered(tmp_path, model, **scale):
    """(Δτ/τ, Δf_q) against the truth of one noise-free sample simulated with ``model`` and
    cooked with the background ``scale`` settings."""
    params = cooktrees.image_params(n_frames=512, sample_transmission=TRANSMISSION, background_model=model,
                                    noise_free=True, dtype="float32", **CELL)
    base = tmp_path / model
    cooktrees.write_runs(base, params, seeds=[3])
    prop = cooktrees.repository(base, cache=False)[cooktrees.PROPOSAL]
    cooktrees.seed_spice(prop, params, n_mc=40)
    results = {}
    for name, settings in scale.items():
        ds = prop["S001"].cook(q_integration=settings)
        tau, f_q = cooktrees.true_fit(ds, params)
        scale_used = prop["S001"].cook("q_integration", q_integration=settings).attrs["background"]["k"]
        results[name] = (ds.tau.item() / tau - 1.0, ds.f_q.item() - f_q, scale_used)
    return results


MODES = {"forward_ratio": {"bg_scale_mode": "forward_ratio"}, "manual": {"bg_scale_mode": "manual", "bg_scale": 1.0}}


def test_cell_attenuated_is_recovered_by_the_forward_ratio(tmp_path):
    results = recovered(tmp_path, "cell_attenuated", **MODES)
    tau_bias, f_q_bias, _ = results["forward_ratio"]
    assert abs(tau_bias) < 0.01 and abs(f_q_bias) < 0.005
    assert results["forward_ratio"][2] == pytest.approx(TRANSMISSION, rel=0.02)  # τ_s·k (k = 1), and the sample's own
    # scattering near q = 0 in the forward box
    tau_wrong, f_q_wrong, _ = results["manual"]  # k = 1 takes the cell away twice: τ −24 %, f_q −0.034
    assert tau_wrong < -0.1 and f_q_wrong < -0.02


def test_unattenuated_is_recovered_by_the_manual_scale_of_the_background_run(tmp_path):
    results = recovered(tmp_path, "unattenuated", **MODES)
    tau_bias, f_q_bias, _ = results["manual"]
    assert abs(tau_bias) < 0.01 and abs(f_q_bias) < 0.005
    tau_wrong, f_q_wrong, _ = results["forward_ratio"]  # ≈ τ_s: half the cell left, τ +23 %, f_q +0.028
    assert tau_wrong > 0.1 and f_q_wrong > 0.02


def test_the_right_scale_is_in_the_params_the_truth_and_the_demo_spice(tmp_path):
    attenuated = synthetic.preset_params("tiny", sample_transmission=0.4, background_scale=1.25)
    plain = synthetic.preset_params("tiny", sample_transmission=0.4, background_scale=1.25,
                                    background_model="unattenuated")
    assert attenuated.background_model == "cell_attenuated"  # the default: a sample cell
    assert attenuated.subtraction_scale() == pytest.approx(0.5) and plain.subtraction_scale() == pytest.approx(1.25)
    tiny = {"n_frames": 8, "sample_transmission": 0.4, "background_scale": 1.25}
    record = synthetic.write_sample(tmp_path / "2025A1234" / "S001", synthetic.preset_params(
        "tiny", background_model="unattenuated", **tiny), seed=1)
    assert record["subtraction_scale"] == 1.25 and record["params"]["background_model"] == "unattenuated"
    synthetic.write_sample(tmp_path / "2025B5678" / "S001", synthetic.preset_params("tiny", **tiny), seed=1)
    repo = cooktrees.repository(tmp_path, cache=False)
    seeded = {r.type: r.data for r in demo.seed_spice(repo["2025A1234"], plain)}
    assert seeded["q_integration"]["bg_scale_mode"] == "manual" and seeded["q_integration"]["bg_scale"] == 1.25
    seeded = {r.type: r.data for r in demo.seed_spice(repo["2025B5678"], attenuated)}
    assert "bg_scale_mode" not in seeded["q_integration"]  # forward_ratio, the default
    with pytest.raises(BadInput, match="background_model must be one of cell_attenuated, unattenuated"):
        synthetic.preset_params("tiny", background_model="attenuated")
    with pytest.raises(BadInput, match="sample_transmission must lie in"):
        synthetic.preset_params("tiny", sample_transmission=0.0)
    with pytest.raises(BadInput, match="noise_free .* needs a float dtype"):
        synthetic.preset_params("tiny", noise_free=True)
