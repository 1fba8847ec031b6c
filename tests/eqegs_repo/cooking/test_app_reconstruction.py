"""Cooking from the app's work: a sample whose raw sensor data are gone (or broken) cooks from
its ``reconstruction/reconstruction.npy`` (docs/reanalysis.md#from-the-apps-work).

The trees are made as the issue asks: a synthetic proposal is cooked from its raw data,
exported as the app's step folders, then its raw sensor files are removed
(:func:`eqegs_repo.simulate.demo.app_folders_only`).
"""
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from eqegs_repo import BadInput, BadSample, Repository, batch
from eqegs_repo.cli.main import main
from eqegs_repo.errors import AppReconstructionWarning
from eqegs_repo.simulate import demo
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params, seed_spice, write_runs

SAMPLES = ("S001", "S002")
OTHER_RANGE = {"q_min": 10.5, "q_max": 12.5}
# The stack on disk is float32 (reconstruction.dtype_out): it holds the raw counts, whole
# numbers far below 2**24, exactly, and both inputs are summed and integrated in float64 by
# the same kernels; only the order of the sums could differ (a few ulp of float64). 1e-12
# allows that, and fails at once for a lost or changed count (a relative change of ~1e-6).
RTOL = 1e-12


def repository(base):
    return Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=f"{base}/.cache")


def stack_path(base, key):
    return f"{base}/{PROPOSAL}/{key}/reconstruction/reconstruction.npy"


@pytest.fixture(scope="module")
def app_tree(tmp_path_factory):
    """``(base, reference)``: a background run and S001, S002 (S002 with its own q range
    record) cooked from raw, exported, raw sensor files removed; ``reference`` holds the
    cooks from raw (``(key, "spice")`` with the spice, ``("S001", "other")`` with OTHER_RANGE)."""
    base = tmp_path_factory.mktemp("app")
    params = image_params(n_frames=256)
    write_runs(base, params, [1, 2])
    repo = repository(base)
    prop = repo[PROPOSAL]
    seed_spice(prop, params, bg_n_points=10, n_mc=20)
    prop.spice.seed("q_range", "S002", q_min=11.5, q_max=13.5)
    reference = {(key, "spice"): prop[key].cook() for key in SAMPLES}
    reference["S001", "other"] = prop["S001"].cook(**OTHER_RANGE)
    removed = demo.app_folders_only(prop)
    assert sorted(removed) == [BACKGROUND, *SAMPLES]
    for key, files in removed.items():
        assert sorted(os.path.basename(f) for f in files) == ["sensor_0.npy", "sensor_1.npy", "sensor_2.npy"]
        assert os.path.exists(f"{base}/{PROPOSAL}/{key}/train_integrated/velocity.npy")
        assert os.path.exists(stack_path(base, key))
    return base, reference


@pytest.fixture()
def copy(app_tree, tmp_path):
    """A copy of the app-only tree (spice included), to be damaged."""
    target = tmp_path / "tree"
    shutil.copytree(app_tree[0], target, ignore=shutil.ignore_patterns(".cache"))
    return target


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as own:
        yield own


def assert_same_fit(ds, ref):
    for name in ("tau", "f_q", "tau_error", "f_q_error", "beta", "chi2_red"):
        np.testing.assert_allclose(float(ds[name]), float(ref[name]), rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(ds.isf.values, ref.isf.values, rtol=RTOL)
    np.testing.assert_allclose(ds.isf_sigma.values, ref.isf_sigma.values, rtol=RTOL)


def test_a_proposal_of_app_folders_only_reanalyses_with_spice_q_ranges_as_from_raw(app_tree, client):
    base, reference = app_tree
    repo = repository(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        table = batch.reanalyze(repo, client=client, progress=False).set_index("sample")
    assert table.status.to_dict() == {BACKGROUND: "background", "S001": "ok", "S002": "ok"}
    assert (table.input == "app_reconstruction").all()
    assert (table.q_min["S001"], table.q_max["S001"]) == (11.0, 13.0)        # the proposal's record
    assert (table.q_min["S002"], table.q_max["S002"]) == (11.5, 13.5)        # S002's own record
    for key in SAMPLES:
        ds = repo[PROPOSAL][key].cook()
        assert ds.attrs["input"]["kind"] == "app_reconstruction"
        assert_same_fit(ds, reference[key, "spice"])
        assert float(table.tau_ns[key]) == float(ds.tau)
    # a q range the app never used: a new proposal record, and the reanalysis follows it
    repo[PROPOSAL].spice.update("q_range", comment="a narrower range", **OTHER_RANGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        again = batch.reanalyze(repo, samples="S001", client=client, progress=False).iloc[0]
    assert (again.status, again.q_min, again.q_max) == ("ok", 10.5, 12.5)
    assert_same_fit(repo[PROPOSAL]["S001"].cook(), reference["S001", "other"])


def test_provenance_names_the_app_file_in_the_dataset_the_export_and_the_results(copy):
    s = repository(copy)[PROPOSAL]["S001"]
    with pytest.warns(AppReconstructionWarning, match=r"sensor_0\.npy") as caught:
        ds = s.cook(use_cache=False)
    assert len([w for w in caught if w.category is AppReconstructionWarning]) == 1   # once per cook
    source = ds.attrs["input"]
    path = stack_path(copy, "S001")
    assert (source["kind"], source["file"], source["path"]) == ("app_reconstruction",
                                                                "reconstruction/reconstruction.npy", path)
    assert source["size"] == os.path.getsize(path) and source["shape"] == [256, 64, 48]
    assert len(source["fingerprint"]) == 64 and "sensor_0.npy" in source["reason"]
    with pytest.warns(AppReconstructionWarning):       # the export's own cook says it again
        done = s.export("e_spectrum_and_isf", subdir="from_app")
    with open(f"{done.folder}/dl/info/info.json") as f:
        info = json.load(f)
    assert info["input"]["path"] == path and info["input"]["fingerprint"] == source["fingerprint"]
    back = s.results["e_spectrum_and_isf"]["from_app"]
    assert back.attrs["input"]["kind"] == "app_reconstruction"
    assert float(back.tau) == float(ds.tau)


def test_table_repr_info_and_eqegs_ls_show_the_source(copy, capsys):
    prop = repository(copy)[PROPOSAL]
    table = prop.table()
    assert table.set_index("key").input.to_dict() == dict.fromkeys(
        [BACKGROUND, *SAMPLES], "app reconstruction (raw unusable)")
    assert (table.problem == "").all() and (table.dtype == "float32").all()
    assert "input" in table.compact().columns
    s = prop["S001"]
    assert "from the app reconstruction (raw unusable)" in repr(s)
    assert stack_path(copy, "S001") in s.info()["input"]
    assert main(["ls", f"{copy}/{{proposal}}/{{sample}}", PROPOSAL]) == 0
    assert "app reconstruction (raw unusable)" in capsys.readouterr().out


def test_eqegs_reanalyze_over_app_folders(copy, client, capsys):
    csv = copy / "table.csv"
    status = main(["reanalyze", f"{copy}/{{proposal}}/{{sample}}", "--scheduler", client.scheduler.address,
                   "--no-progress", "--csv", str(csv)])
    assert status == 0
    import pandas as pd

    rows = pd.read_csv(csv).set_index("sample")
    assert rows.status.to_dict() == {BACKGROUND: "background", "S001": "ok", "S002": "ok"}
    assert (rows.input == "app_reconstruction").all()


def test_raw_comes_first_and_the_app_stack_is_a_named_option(tmp_path):
    """Both inputs present: raw by default; ``input="app_reconstruction"`` gives the same numbers
    from the app's stack; a reconstruction made from the app's stack never replaces it."""
    params = image_params(n_frames=128)
    write_runs(tmp_path, params, [5])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    s = repo[PROPOSAL]["S001"]
    for key in (BACKGROUND, "S001"):         # an override of the input holds for the background too
        repo[PROPOSAL][key].export("reconstruction")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AppReconstructionWarning)   # nothing falls back here
        raw = s.cook("q_integration")
        app = s.cook("q_integration", input="app_reconstruction")
    assert raw.attrs["input"] == {"kind": "raw", "format": "npy"}
    assert app.attrs["input"]["kind"] == "app_reconstruction" and app.attrs["input"]["reason"] is None
    assert app.attrs["fingerprint"] != raw.attrs["fingerprint"]
    assert (app.attrs["passes"]["path"], app.attrs["passes"]["sample_reads"]) == ("fused", 1)  # one read of the stack
    np.testing.assert_allclose(app.intensity.values, raw.intensity.values, rtol=RTOL)
    assert app.centre == raw.centre
    before = open(stack_path(tmp_path, "S001"), "rb").read()
    with pytest.raises(BadInput, match="never replaced by a result made from it"):
        s.export("reconstruction", overwrite=True, input="app_reconstruction")
    assert open(stack_path(tmp_path, "S001"), "rb").read() == before


def test_broken_raw_falls_back_with_a_warning_unless_raw_is_asked_for(tmp_path):
    params = image_params(n_frames=128)
    write_runs(tmp_path, params, [5])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    s = repo[PROPOSAL]["S001"]
    s.export("reconstruction")
    sensor = tmp_path / PROPOSAL / "S001" / "train_integrated" / "sensor_1.npy"
    sensor.write_bytes(sensor.read_bytes()[:-100])
    with pytest.warns(AppReconstructionWarning, match=r"sensor_1\.npy: truncated"):
        ds = s.cook("reconstruction")
    assert ds.attrs["input"]["kind"] == "app_reconstruction"
    with pytest.raises(BadSample, match=r"sensor_1\.npy: truncated"):
        s.cook("reconstruction", input="raw")
    assert repo[PROPOSAL].table(check=True).set_index("key").input["S001"] == "app reconstruction (raw unusable)"


@pytest.mark.parametrize("damage, found", [
    ("shape", r"expected a \(frames, rows, cols\) stack of shape \(256, 64, 48\).*found shape \(256, 48, 64\)"),
    ("dtype", r"expected a stack of real numbers .* found dtype complex64"),
    ("truncated", r"truncated: the header says shape \(256, 64, 48\)"),
])
def test_a_bad_reconstruction_npy_is_one_error_naming_it_and_the_batch_carries_on(copy, client, damage, found):
    path = stack_path(copy, "S002")
    if damage == "shape":
        np.save(path, np.zeros((256, 48, 64), np.float32))
    elif damage == "dtype":
        np.save(path, np.zeros((256, 64, 48), np.complex64))
    else:
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:-1000])
    repo = repository(copy)
    with pytest.raises(BadSample, match=found) as caught:
        repo[PROPOSAL]["S002"].cook("q_integration")
    assert str(caught.value).startswith(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        table = batch.reanalyze(repo, client=client, progress=False).set_index("sample")
    assert table.status.to_dict() == {BACKGROUND: "background", "S001": "ok", "S002": "failed"}
    assert path in table.error["S002"] and "BadSample" in table.error["S002"]
    row = repo[PROPOSAL].table().set_index("key").loc["S002"]
    assert path in row.problem


def test_the_cache_keys_on_the_reconstruction_file(copy):
    s = repository(copy)[PROPOSAL]["S001"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        first = s.cook("reconstruction")
        assert s.cache_status()["reconstruction"] == "fresh"
        path = stack_path(copy, "S001")
        stack = np.load(path)
        stack[3, 10, 10] += 1.0                       # one more count, in a rewritten file
        np.save(path, stack)
        assert s.cache_status()["reconstruction"] == "stale"
        second = s.cook("reconstruction")
    assert second.attrs["fingerprint"] != first.attrs["fingerprint"]
    assert second.attrs["input"]["fingerprint"] != first.attrs["input"]["fingerprint"]
    assert second.counts_per_frame.values[3] == first.counts_per_frame.values[3] + 1


def test_a_sample_without_its_marker_reads_the_apps_copy(copy):
    os.remove(copy / PROPOSAL / "S001" / "train_integrated.json")
    prop = repository(copy)[PROPOSAL]
    assert "S001" in prop.keys()
    s = prop["S001"]
    assert s.marker_path.endswith("S001/reconstruction/dl/info/train_integrated.json")
    assert s.marker["n_frames"] == 256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        ds = s.cook("q_integration")
    assert ds.attrs["input"]["kind"] == "app_reconstruction"


def test_no_velocity_is_one_error_naming_what_is_missing(copy):
    shutil.rmtree(copy / PROPOSAL / "S001" / "train_integrated")
    s = repository(copy)[PROPOSAL]["S001"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AppReconstructionWarning)
        assert s.cook("q_integration").attrs["input"]["kind"] == "app_reconstruction"
        with pytest.raises(BadSample, match=r"no drive waveform .*velocity\.npy is missing"):
            s.cook()


def test_when_neither_input_can_be_used_the_error_names_both(copy):
    path = stack_path(copy, "S001")
    np.save(path, np.zeros((256, 48, 64), np.float32))
    with pytest.raises(BadSample) as caught:
        repository(copy)[PROPOSAL]["S001"].cook("reconstruction")
    message = str(caught.value)
    assert message.startswith(f"{path}: expected a (frames, rows, cols) stack of shape (256, 64, 48)")
    assert "the raw data cannot be used either" in message and "sensor_0.npy" in message


def test_gaps_between_sensors_stay_out_of_the_mask_when_cooking_from_the_stack(tmp_path):
    """The stack is read as one canvas-wide "sensor", but the mask and the pixel counts use the
    sensors' coverage: with 2-px gaps between the sensors, both inputs leave the gaps out."""
    params = image_params(n_frames=128)
    write_runs(tmp_path, params, [5])
    repo = repository(tmp_path)
    prop = repo[PROPOSAL]
    seed_spice(prop, params, bg_n_points=10, n_mc=20)
    prop.spice.update("sensor_layout", offsets=[[0, 0], [0, 18], [0, 36]], canvas_shape=[64, 52])
    for key in (BACKGROUND, "S001"):
        prop[key].export("reconstruction")
    s = prop["S001"]
    raw = s.cook("q_integration")
    app = s.cook("q_integration", input="app_reconstruction")
    rec = s.cook("reconstruction", input="app_reconstruction")
    assert int((rec.coverage.values == 0).sum()) == 2 * 2 * 64                  # two gaps of 2 columns
    np.testing.assert_array_equal(rec.coverage.values, s.cook("reconstruction").coverage.values)
    np.testing.assert_array_equal(app.npix.values, raw.npix.values)
    np.testing.assert_allclose(app.intensity.values, raw.intensity.values, rtol=RTOL)
