"""sample.export: the app's step folders and download zips, names, safety, CLI and batch."""
import json
import os
import zipfile

import numpy as np
import pytest

from eqegs_repo import BadInput, Repository, batch
from eqegs_repo.cli.main import main
from eqegs_repo.cooking import export as outputs
from eqegs_repo.errors import SkippedWarning
from eqegs_repo.io.app_format import names as app_names
from eqegs_repo.io.app_format.text import mask_sha256
from eqegs_repo.kernels.sensors import SensorLayout, combine
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"


def _tree(base, name):
    tree = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="tiny", seed=1, samples_per_proposal=1)
    truth = synthetic.load_truth(base, tree.account, PROPOSAL, "S001")
    spice_url = f"memory://spice-outputs-{name}"
    repo = Repository(tree.url(), spice_url=spice_url, cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=40)
    return repo, spice_url


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Tiny tree (64 x 48 px, 128 frames), background + S001, q range 11..13 (folder 11_13)."""
    return _tree(tmp_path_factory.mktemp("outputs"), "main")


@pytest.fixture
def fresh(tmp_path):
    """A tree of its own (for tests that write and overwrite)."""
    return _tree(tmp_path, tmp_path.name)


def _files(folder):
    out = set()
    for here, _, names in os.walk(folder):
        out |= {os.path.relpath(os.path.join(here, n), folder) for n in names}
    return out


def _without_subfolders(files):
    return {f for f in files if f.split(os.sep)[0] in ("dl", "log") or os.sep not in f}


# --- naming ----------------------------------------------------------------------------------
def test_names_follow_the_manual():
    assert app_names.format_number(10.0) == "10" and app_names.format_number(10.1) == "10.1"
    assert app_names.q_range_folder(10.1, 14.1) == "10.1_14.1"
    assert app_names.q_range_folder(10.0, 14) == "10_14"
    assert app_names.file_suffix("S001", 10.0, 14.1, 1.0) == "001_q10to14.1q_BG_1.txt"
    assert app_names.file_suffix("glass", 10.5, 12, 0.95) == "glass_q10.5to12q_BG_0.95.txt"
    assert app_names.zip_name("reconstruction", "S1") == "reconstruction_S1.zip"
    assert app_names.zip_name("q_integration", "S1") == "q_integration_S1.zip"
    assert app_names.zip_name("q_integration", "S1", "A") == "q_integration_S1_A.zip"
    e = "e_spectrum_and_isf"
    assert app_names.zip_name(e, "S1") == "e_spectrum_and_isf_S1.zip"
    assert app_names.zip_name(e, "S1", e_subdir="B") == "e_spectrum_and_isf_S1_o_B.zip"
    assert app_names.zip_name(e, "S1", q_subdir="A") == "e_spectrum_and_isf_S1_i_A.zip"
    assert app_names.zip_name(e, "S1", "A", "B") == "e_spectrum_and_isf_S1_i_A_o_B.zip"


# --- layout ----------------------------------------------------------------------------------
def test_export_writes_each_step_folder_and_zip_as_the_app(tree):
    repo, _ = tree
    sample = repo[PROPOSAL]["S001"]
    download = f"{sample.proposal.path}/download"
    rec = sample.export("reconstruction")
    qi = sample.export("q_integration")
    es = sample.export("e_spectrum_and_isf")
    figs = {"reconstruction": {"dl/fig/01_frame_summed_image.png"},
            "q_integration": {f"dl/fig/{n}.png" for n in (
                "02_frame_summed_image", "06_forward_counts", "07_subtracted_image", "08_mask",
                "09_masked_image", "10_intensity_q")},
            "e_spectrum_and_isf": {f"dl/fig/{n}.png" for n in (
                "12_velocity_spectra", "13_structure_factor", "17_energy_spectra", "26_transforms",
                "29_spectra", "39_isf")}}
    common = {"dl/info/info.json", "log/eqegs_export.log"}
    assert rec.folder == f"{sample.path}/reconstruction" and rec.zip == f"{download}/reconstruction_S001.zip"
    assert _files(rec.folder) == common | figs["reconstruction"] | {
        "reconstruction.npy", "reconstruction.csv", "dl/info/roi_detection.json", "dl/info/train_integrated.json"}
    assert qi.folder == f"{sample.path}/q_integration" and qi.zip == f"{download}/q_integration_S001.zip"
    assert _files(qi.folder) == common | figs["q_integration"] | {
        "rdf.npz", "dl/info/q.json", "dl/2Dimage_diff_SCATTERING_NOISE.csv", "dl/rdf_diff_scattering_noise.txt"}
    # q range 11..13 (whole numbers) -> sub-folder 11_13 and zip _o_11_13
    assert es.folder == f"{sample.path}/e_spectrum_and_isf/11_13" and es.subdir == "11_13"
    assert es.zip == f"{download}/e_spectrum_and_isf_S001_o_11_13.zip"
    suffix = "001_q11to13q_BG_1.txt"
    assert _files(es.folder) == common | figs["e_spectrum_and_isf"] | {
        "dl/1D_SCATTERING_intensity.csv", "dl/2Dimage_diff.csv", f"dl/Energyfit_relax_{suffix}",
        f"dl/Energyfit_resol_{suffix}", f"dl/time_Sq_std_{suffix}", f"dl/time_Sq_std_THRESH_{suffix}",
        f"dl/ISF_fit_{suffix}"}
    for done in (rec, qi, es):  # each zip holds its folder's dl/, byte for byte
        with zipfile.ZipFile(done.zip) as archive:
            members = set(archive.namelist())
            assert members == {f for f in _files(done.folder) if f.startswith("dl/")}
            assert archive.read("dl/info/info.json") == open(f"{done.folder}/dl/info/info.json", "rb").read()
    assert sorted(os.listdir(download)) == sorted(os.path.basename(d.zip) for d in (rec, qi, es))
    assert not [n for n in os.listdir(sample.path) if n.startswith(".")]  # no temporary folders left
    assert sample.step_results()["q_integration"] == ["main"]


def test_reconstruction_npy_is_the_full_frame_stack(tree):
    repo, _ = tree
    sample = repo[PROPOSAL]["S001"]
    folder = f"{sample.path}/reconstruction"
    if not os.path.exists(folder):
        sample.export("reconstruction")
    stack = np.load(f"{folder}/reconstruction.npy", mmap_mode="r")
    cooked = sample.cook("reconstruction")
    layout = SensorLayout.from_mapping(cooked.attrs["sensor_layout"])
    assert stack.shape == (sample.marker["n_frames"],) + tuple(layout.canvas_shape) and stack.dtype == np.float32
    raw = sample.raw.counts
    for frame in (0, 77, stack.shape[0] - 1):
        expected = combine([raw[k, frame:frame + 1].values for k in range(raw.sizes["sensor"])], layout=layout)[0]
        np.testing.assert_array_equal(stack[frame], expected)
    np.testing.assert_array_equal(stack.sum(axis=(1, 2), dtype=np.float64), cooked.counts_per_frame.values)
    image = np.loadtxt(f"{folder}/reconstruction.csv", delimiter=",")
    np.testing.assert_array_equal(image, cooked.image.values)
    detection = json.load(open(f"{folder}/dl/info/roi_detection.json"))
    assert [detection[k] for k in ("x0", "y0", "x1", "y1")] == cooked.attrs["roi"]
    marker = json.load(open(f"{folder}/dl/info/train_integrated.json"))
    assert marker == sample.marker


def test_rdf_npz_keys_and_info_json(tree):
    repo, _ = tree
    sample = repo[PROPOSAL]["S001"]
    folder = f"{sample.path}/q_integration"
    if not os.path.exists(f"{folder}/rdf.npz"):
        sample.export("q_integration")
    qds = sample.cook("q_integration")
    with np.load(f"{folder}/rdf.npz", allow_pickle=False) as rdf:
        assert {"q", "two_theta", "r_px", "npix", "I_sum", "var", "fwd_sample", "fwd_bg", "k", "centre", "roi",
                "sectors", "mask_hash", "param_record_ids"} <= set(rdf.files)
        np.testing.assert_array_equal(rdf["I_sum"], qds.intensity.values)
        assert rdf["I_sum"].shape == (sample.marker["n_frames"], qds.sizes["q"])
        assert float(rdf["k"]) == qds.attrs["background"]["k"] and rdf["sectors"].shape == (0, 2)
        assert str(rdf["mask_hash"]) == mask_sha256(qds.mask.values)
        assert json.loads(str(rdf["param_record_ids"])) == qds.attrs["spice"]
    info = json.load(open(f"{folder}/dl/info/info.json"))
    assert info["format"] == app_names.INFO_FORMAT and info["fingerprint"] == qds.attrs["fingerprint"]
    assert info["parameters"]["q_integration"]["output_subdir"] == ""  # export-only fields recorded too
    for type_name, values in qds.attrs["parameters"].items():
        assert {k: info["parameters"][type_name][k] for k in values} == values
    assert info["spice"] == qds.attrs["spice"] and info["attrs"]["centre_x"] == qds.attrs["centre_x"]
    q_json = json.load(open(f"{folder}/dl/info/q.json"))
    assert q_json["bg_sample_id"] == synthetic.BACKGROUND_SAMPLE_ID and q_json["n_bins"] == qds.sizes["q"]


# --- sub-folders -----------------------------------------------------------------------------
def test_sectors_write_mask_and_subfolders_name_folders_and_zips(fresh):
    repo, _ = fresh
    sample = repo[PROPOSAL]["S001"]
    download = f"{sample.proposal.path}/download"
    sectors = dict(q_integration={"angle_mode": "specify", "sectors": [[270.0, 90.0]]})
    sect = sample.export("q_integration", subdir="right", **sectors)
    assert sect.folder == f"{sample.path}/q_integration/right" and sect.zip == f"{download}/q_integration_S001_right.zip"
    mask = np.load(f"{sect.folder}/mask.npy")
    np.testing.assert_array_equal(mask, sample.cook("q_integration", **sectors).mask.values)
    assert not mask[:, :20].any() and mask[:, 30:].any()  # right half only (centre near x = 24)
    with np.load(f"{sect.folder}/rdf.npz") as rdf:
        np.testing.assert_array_equal(rdf["sectors"], [[270.0, 90.0]])
    # E spectrum reading that sub-folder: i_right; q range with decimals names the output folder
    es = sample.export("e_spectrum_and_isf", e_spectrum={"input_subdir": "right"}, q_min=11.5)
    assert es.folder == f"{sample.path}/e_spectrum_and_isf/11.5_13"
    assert es.zip == f"{download}/e_spectrum_and_isf_S001_i_right_o_11.5_13.zip"
    assert os.path.exists(f"{es.folder}/dl/time_Sq_std_001_q11.5to13q_BG_1.txt")
    main_es = sample.export("e_spectrum_and_isf", subdir="")  # specify, empty: the step folder itself
    assert main_es.folder == f"{sample.path}/e_spectrum_and_isf" and main_es.zip.endswith("/e_spectrum_and_isf_S001.zip")
    named = sample.export("e_spectrum_and_isf", e_spectrum={"output_subdir_mode": "specify", "output_subdir": "run2"},
                          q_integration={"output_subdir": "right"})
    assert named.zip.endswith("/e_spectrum_and_isf_S001_i_right_o_run2.zip")
    assert set(sample.results["e_spectrum_and_isf"]) == {"main", "11.5_13", "run2"}
    assert set(sample.results["q_integration"]) == {"right"}


# --- safety ----------------------------------------------------------------------------------
def test_existing_results_are_refused_skipped_or_overwritten(fresh):
    repo, _ = fresh
    sample = repo[PROPOSAL]["S001"]
    first = sample.export("q_integration")
    sample.export("q_integration", subdir="A")
    before = open(f"{first.folder}/rdf.npz", "rb").read()
    with pytest.raises(BadInput, match=r"q_integration .*already exist.*overwrite=True"):
        sample.export("q_integration")
    skipped = sample.export("q_integration", skip_existing=True, radial_bin_px=2.0)
    assert skipped.skipped and skipped.dataset is None
    assert open(f"{first.folder}/rdf.npz", "rb").read() == before
    with pytest.raises(BadInput, match="contradict"):
        sample.export("q_integration", overwrite=True, skip_existing=True)
    replaced = sample.export("q_integration", overwrite=True, radial_bin_px=2.0)
    with np.load(f"{first.folder}/rdf.npz") as rdf:
        assert rdf["q"].size == replaced.dataset.sizes["q"] < sample.cook("q_integration").sizes["q"]
    assert os.path.exists(f"{first.folder}/A/rdf.npz")  # the sub-folder result is kept
    info = json.load(open(f"{first.folder}/dl/info/info.json"))
    assert info["overrides"] == {"q_integration": {"radial_bin_px": 2.0}}
    # a zip alone also counts as an existing result
    os.remove(f"{sample.proposal.path}/download/q_integration_S001_A.zip")
    os.rename(f"{first.folder}/A", f"{first.folder}/.moved")
    open(f"{sample.proposal.path}/download/q_integration_S001_A.zip", "wb").close()
    with pytest.raises(BadInput, match="q_integration_S001_A.zip"):
        sample.export("q_integration", subdir="A")
    assert not os.path.exists(f"{first.folder}/A")


def test_a_crash_leaves_no_half_written_result(fresh, monkeypatch):
    repo, _ = fresh
    sample = repo[PROPOSAL]["S001"]
    download = f"{sample.proposal.path}/download"

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs, "_publish", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        sample.export("reconstruction")
    assert not os.path.exists(f"{sample.path}/reconstruction")
    assert not [n for n in os.listdir(sample.path) if n.startswith(".")]
    assert not os.path.exists(download) or not os.listdir(download)
    monkeypatch.undo()
    done = sample.export("reconstruction")
    before = open(f"{done.folder}/reconstruction.csv", "rb").read()
    monkeypatch.setattr(outputs, "_write_figures", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        sample.export("reconstruction", overwrite=True, roi={"x0": 5, "y0": 5, "x1": 30, "y1": 30})
    assert open(f"{done.folder}/reconstruction.csv", "rb").read() == before
    assert os.path.exists(f"{done.folder}/dl/info/roi_detection.json")
    assert os.listdir(download) == ["reconstruction_S001.zip"]
    assert not [n for n in os.listdir(sample.path) if n.startswith(".")]


def test_bad_subfolder_names_name_the_parameter_and_its_source(tree):
    repo, _ = tree
    sample = repo[PROPOSAL]["S001"]
    with pytest.raises(BadInput, match=r"q_integration\.output_subdir = 'a-b'.*from override"):
        sample.export("q_integration", subdir="a-b")
    with pytest.raises(BadInput, match=r"e_spectrum\.output_subdir = 'x/y'"):
        sample.export("e_spectrum_and_isf", subdir="x/y")
    with pytest.raises(BadInput, match=r"e_spectrum\.input_subdir = '\.\.'"):
        sample.export("e_spectrum_and_isf", e_spectrum={"input_subdir": ".."})
    with pytest.raises(BadInput, match=r"q_integration\.output_subdir = 'dl' \(from override\).*own dl/"):
        sample.export("q_integration", subdir="dl")
    sample.proposal.spice.update("e_spectrum", "S001", output_subdir_mode="specify", output_subdir="log")
    with pytest.raises(BadInput, match=r"e_spectrum\.output_subdir = 'log' \(from proposal S001 r\d"):
        sample.export("e_spectrum_and_isf")
    sample.proposal.spice.update("e_spectrum", "S001", output_subdir_mode="q_range", output_subdir="")
    with pytest.raises(BadInput, match="reconstruction step has no sub-folders"):
        sample.export("reconstruction", subdir="A")
    with pytest.raises(BadInput, match="unknown step"):
        sample.export("q_integrate")
    # a record in spice with a bad name is refused when it is written, naming the field
    with pytest.raises(Exception, match="output_subdir"):
        sample.proposal.spice.update("q_integration", "S001", output_subdir="no good")


def test_calibration_files_are_copied_next_to_the_results(fresh, tmp_path):
    repo, _ = fresh
    folder = tmp_path / "calib"
    folder.mkdir()
    (folder / "calibration_velocity.py").write_text(
        "def measured(measured, n_frames):\n    return 1.0 * measured\n\nCALIBRATIONS = {1: measured}\n")
    (folder / "calibration_angle.py").write_text("import numpy as np\nCALIBRATIONS = {0: np.ones_like}\n")
    (folder / "sp_param.json").write_text('{"START_CUT_FRAMES": 5}')
    (folder / "data_table.csv").write_text("sample_name, velocity, angle, comment\n001,1,0,first\n")
    repo[PROPOSAL].spice.seed("calibration", folder=str(folder))
    repo.trusted_calibration_dirs = [str(folder)]
    done = repo[PROPOSAL]["S001"].export("e_spectrum_and_isf")
    for name in ("calibration_velocity.py", "calibration_angle.py", "sp_param.json", "data_table.csv"):
        assert (folder / name).read_bytes() == open(f"{done.folder}/dl/info/{name}", "rb").read()
    with zipfile.ZipFile(done.zip) as archive:
        assert "dl/info/calibration_velocity.py" in archive.namelist()


def test_figures_only_when_matplotlib_is_there(fresh, monkeypatch):
    repo, _ = fresh
    sample = repo[PROPOSAL]["S001"]
    monkeypatch.setattr(outputs, "can_draw", lambda: False)
    with pytest.warns(SkippedWarning, match="figures skipped"):
        done = sample.export("reconstruction")
    assert not os.path.exists(f"{done.folder}/dl/fig")
    monkeypatch.undo()
    again = sample.export("reconstruction", overwrite=True)
    png = open(f"{again.folder}/dl/fig/01_frame_summed_image.png", "rb").read()
    assert png.startswith(b"\x89PNG")


# --- command line and batch ------------------------------------------------------------------
def test_cli_cook_export_and_overwrite(fresh, capsys):
    repo, spice_url = fresh
    sample = repo[PROPOSAL]["S001"]
    args = ["cook", repo.url, PROPOSAL, "S001", "--step", "q_integration", "--spice-url", spice_url,
            "--cache-url", repo.cache_url]
    assert main(args + ["--export"]) == 0
    assert f"exported {sample.path}/q_integration" in capsys.readouterr().out
    assert main(args + ["--export"]) == 1
    assert "already exist" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 1 and "only apply with --export" in capsys.readouterr().err
    assert main(args + ["--export", "--overwrite", "--set", "radial_bin_px=2"]) == 0
    with np.load(f"{sample.path}/q_integration/rdf.npz") as rdf:
        assert rdf["q"].size < sample.cook("q_integration").sizes["q"]


def test_batch_export_leaves_existing_folders_alone(fresh):
    repo, _ = fresh
    sample = repo[PROPOSAL]["S001"]
    row = batch.cook_sample(sample, steps=("reconstruction", "q_integration"), export=True)
    assert row["status"] in ("ok", "up-to-date"), row["error"]
    info = f"{sample.path}/q_integration/dl/info/info.json"
    before = open(info, "rb").read()
    again = batch.cook_sample(sample, steps=("reconstruction", "q_integration"), export=True)
    assert again["status"] == "up-to-date", again["error"]
    assert open(info, "rb").read() == before


def test_export_and_results_on_another_filesystem(tree):
    """The same on fsspec's memory filesystem: streamed stack, renames, zips, reading back."""
    import fsspec

    local, _ = tree
    fs = fsspec.filesystem("memory")
    root = f"/outputs-{os.getpid()}"
    for key in local[PROPOSAL].keys():  # raw files only
        path = local[PROPOSAL][key].path
        fs.put(f"{path}/train_integrated", f"{root}/{PROPOSAL}/{key}/train_integrated", recursive=True)
        fs.put(f"{path}/train_integrated.json", f"{root}/{PROPOSAL}/{key}/train_integrated.json")
    repo = Repository(f"memory://{root}/{{proposal}}/{{sample}}", spice_url="memory://spice-outputs-main",
                      cache_url=False)
    sample = repo[PROPOSAL]["S001"]
    try:
        rec = sample.export("reconstruction")
        sample.export("q_integration")
        sample.export("q_integration", overwrite=True, radial_bin_px=2.0)
        assert fs.exists(rec.zip) and not [p for p in fs.find(root) if "/." in p]
        back = sample.results
        frame_sum = back["reconstruction"]["main"]["images"][7].sum(dtype=np.float64).item()
        assert frame_sum == local[PROPOSAL]["S001"].cook("reconstruction").counts_per_frame.values[7]
        assert back["q_integration"]["main"].attrs["overrides"] == {"q_integration": {"radial_bin_px": 2.0}}
    finally:
        fs.rm(root, recursive=True)
