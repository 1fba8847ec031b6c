"""Cache and provenance of cooked results: what re-cooks, what does not, what .attrs say."""
import hashlib
import os

import pytest

from eqegs_repo.cooking import cook as cook_module
from eqegs_repo.cooking import passes
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs


@pytest.fixture
def tree(tmp_path):
    params = image_params(n_frames=256)
    write_runs(tmp_path, params, [1])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    return tmp_path, repo


def forbid(monkeypatch, *names):
    """Make the named passes / step methods raise, to prove they are not run."""
    def refuse(*args, **kwargs):
        raise AssertionError("computed although it should come from the cache")

    for name in names:
        if name.startswith("_cook_"):
            monkeypatch.setattr(cook_module.Cooker, name, refuse)
        else:
            monkeypatch.setattr(passes, name, refuse)


def test_hit_in_a_new_session_and_provenance(tree, monkeypatch):
    base, repo = tree
    first = repo[PROPOSAL]["S001"].cooked
    record = repo[PROPOSAL].spice.view("S001").q_range.source()
    assert first.attrs["spice"]["q_range"] == [{"scope": "proposal", "anchor": "", "uuid": record.uuid,
                                                "revision": record.revision}]
    assert set(first.attrs["spice"]) >= {"sensor_layout", "roi", "geometry", "q_integration", "e_spectrum"}
    assert first.attrs["library_version"] and len(first.attrs["fingerprint"]) == 64
    assert first.attrs["parameters"]["q_range"] == {"q_min": 11.0, "q_max": 13.0}
    entries = [f for _, _, files in os.walk(base / ".cache") for f in files]
    assert len(entries) == 4 and not [f for f in entries if f.startswith(".tmp")]  # 3 steps + background

    forbid(monkeypatch, "frame_sum_pass", "integration_pass", "fused_pass", "_cook_e_spectrum_and_isf")
    again = repository(base)[PROPOSAL]["S001"].cooked  # a new Repository: read from disk
    assert again.tau.item() == first.tau.item()
    assert again.attrs == first.attrs
    assert (again.isf.values == first.isf.values).all()


LAYOUT = (2, {"reconstruction": "9e0dc8904d3d", "q_integration": "6753cb3caaf5", "e_spectrum_and_isf": "c35df7ca882c"})
"""cook.RESULT_FORMAT and a digest of the names in each built-in step's dataset of the tree."""


def test_a_changed_result_layout_comes_with_a_new_result_format(tree):
    """Cached results are read back by name: a layout change without a new RESULT_FORMAT would
    hand a new version of the library an old dataset (a KeyError, or a missing flag)."""
    sample = tree[1][PROPOSAL]["S001"]
    names = {}
    for step in LAYOUT[1]:
        ds = sample.cook(step)
        names[step] = sorted(ds.data_vars) + ["|"] + sorted(ds.coords) + ["|"] + sorted(ds.attrs)
    found = (cook_module.RESULT_FORMAT,
             {step: hashlib.sha256(repr(n).encode()).hexdigest()[:12] for step, n in names.items()})
    assert found == LAYOUT, (f"the layout of the cooked datasets changed ({names}); raise "
                             f"eqegs_repo.cooking.cook.RESULT_FORMAT and set LAYOUT to the new value")


def test_changing_a_used_record_recooks_only_what_depends_on_it(tree, monkeypatch):
    _, repo = tree
    prop = repo[PROPOSAL]
    before = prop["S001"].cooked
    prop.spice.update("q_range", "S001", q_max=12.5)
    forbid(monkeypatch, "frame_sum_pass", "integration_pass", "fused_pass")  # q_integration stays cached
    after = prop["S001"].cooked
    assert after.attrs["q_max"] == 12.5 and after.attrs["fingerprint"] != before.attrs["fingerprint"]
    assert after.attrs["spice"]["q_range"][0]["anchor"] == "S001"
    assert prop.table().set_index("key").loc["S001", "cooked"] == (
        "reconstruction,q_integration,e_spectrum_and_isf")


def test_unrelated_changes_do_not_recook(tree, monkeypatch):
    _, repo = tree
    prop = repo[PROPOSAL]
    prop["S001"].cooked
    prop.spice.update("e_spectrum", "", output_subdir="other", output_subdir_mode="specify")
    prop.spice.seed("reconstruction", dtype_out="uint32")
    prop.spice.seed("roi", "S002", x0=1, y0=1, x1=5, y1=5)  # another sample's anchor
    forbid(monkeypatch, "frame_sum_pass", "integration_pass", "fused_pass", "_cook_e_spectrum_and_isf")
    assert prop["S001"].cooked.attrs["q_min"] == 11.0


def test_raw_file_change_and_roi_change_recook_from_the_first_step(tree, monkeypatch):
    base, repo = tree
    prop = repo[PROPOSAL]
    prop["S001"].cook("q_integration")
    calls = []
    for name in ("frame_sum_pass", "fused_pass"):  # the reconstruction alone, or with the integration
        original = getattr(passes, name)
        monkeypatch.setattr(passes, name, lambda *a, _f=original, **k: calls.append(1) or _f(*a, **k))
    sensor = base / PROPOSAL / "S001" / "train_integrated" / "sensor_1.npy"
    os.utime(sensor, ns=(sensor.stat().st_atime_ns, sensor.stat().st_mtime_ns + 10**9))
    prop["S001"].cook("q_integration")
    assert calls == [1]
    prop.spice.seed("roi", "S001", x0=10, y0=15, x1=40, y1=40)
    status = prop["S001"].cache_status()
    assert status == {"reconstruction": "stale", "q_integration": "stale", "e_spectrum_and_isf": ""}
    rec = prop["S001"].cook("reconstruction")
    assert calls == [1, 1] and rec.attrs["roi"] == [10, 15, 40, 40] and rec.attrs["roi_mode"] == "manual"


def test_overrides_write_no_spice_and_are_recorded(tree):
    _, repo = tree
    prop = repo[PROPOSAL]
    history = len(prop.spice.history("q_range"))
    ds = prop["S001"].cook(q_max=12.0, e_spectrum={"n_mc": 30})
    assert ds.attrs["overrides"] == {"q_range": {"q_max": 12.0}, "e_spectrum": {"n_mc": 30}}
    assert ds.attrs["q_max"] == 12.0 and ds.attrs["isf_parameters"]["n_mc"] == 30
    assert len(prop.spice.history("q_range")) == history
    assert prop["S001"].cooked.attrs["overrides"] == {} and prop["S001"].cooked.attrs["q_max"] == 13.0
    with pytest.raises(ValueError, match="several types"):
        prop["S001"].cook(number=3)
    with pytest.raises(ValueError, match="unknown parameter 'qmax'"):
        prop["S001"].cook(qmax=3)


def test_no_cache_and_memory_cache(tree, tmp_path):
    base, _ = tree
    from eqegs_repo import Repository

    url = f"{base}/{{proposal}}/{{sample}}"
    uncached = Repository(url, spice_url=repository(base).spice_url, cache_url=False)
    assert uncached.cache is None
    assert uncached[PROPOSAL]["S001"].cache_status()["reconstruction"] == ""
    in_memory = Repository(url, spice_url=repository(base).spice_url, cache_url="memory://eqegs-test-cache")
    in_memory[PROPOSAL]["S001"].cook("reconstruction")
    assert in_memory[PROPOSAL]["S001"].cache_status()["reconstruction"] == "fresh"
