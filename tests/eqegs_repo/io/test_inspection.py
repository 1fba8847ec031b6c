"""``eqegs inspect`` and ``eqegs_repo.inspect``: what a folder holds, what every registered format
said of it and why, what is missing and which layout is closest."""
import json
import os
import re
import shutil

import fsspec
import numpy as np
import pytest

import eqegs_repo
from eqegs_repo.cli.main import main
from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.io import formats
from eqegs_repo.io.inspection import inspect
from tests.eqegs_repo.params.test_spice_hostile import isolated
from tests.helpers.treeutil import local_fs, write_sample

NPY_FILES = ["train_integrated/sensor_0.npy", "train_integrated/sensor_1.npy",
             "train_integrated/sensor_2.npy", "train_integrated/velocity.npy"]


@pytest.fixture
def sample(tmp_path):
    folder = f"{tmp_path}/P/S1"
    write_sample(local_fs(), folder)
    return folder


def verdict(report, name):
    return next(v for v in report.verdicts if v.name == name)


def test_a_readable_folder_names_its_format_and_summarises_the_run(sample, capsys):
    report = eqegs_repo.inspect(sample)
    assert report.readable and report.format == "npy" and report.missing == []
    assert report.summary["frames"] == 6 and report.summary["sensor_shape"] == [4, 2]
    assert report.summary["dtype"] == "uint32" and list(report.summary["files"]) == [
        "sensor_0.npy", "sensor_1.npy", "sensor_2.npy", "velocity.npy"]
    assert verdict(report, "npy").reads and report.entries["train_integrated.json"].kind == "file"
    assert repr(report) == str(report)                      # a notebook shows the text
    assert main(["inspect", sample]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{sample}: readable as npy\n  6 frames, 3 sensors of 4 x 2, uint32; 4 files")
    assert re.search(r"^  npy +reads it$", out, re.M)


def test_a_missing_velocity_file_is_named_as_missing_and_as_the_reason(sample, capsys):
    os.remove(f"{sample}/train_integrated/velocity.npy")
    report = inspect(sample)
    assert not report.readable and report.format is None
    npy = verdict(report, "npy")
    assert npy.claims and not npy.reads
    assert npy.reason == f"{sample}/train_integrated/velocity.npy: file not found"
    assert report.missing == ["train_integrated/velocity.npy"] and report.closest == "npy"
    assert main(["inspect", sample]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{sample}: not readable\n")
    assert "missing: train_integrated/velocity.npy\nclosest readable layout: npy" in out


def test_a_velocity_with_nan_is_a_reason_too(sample):
    np.save(f"{sample}/train_integrated/velocity.npy", np.array([0.0, 1, np.nan, 2, 3, 4]))
    report = inspect(sample)
    assert not report.readable and "frame 2 holds nan" in verdict(report, "npy").reason
    assert report.missing == []


def test_a_folder_of_unknown_files_says_what_it_found_and_what_the_default_format_needs(tmp_path, capsys):
    folder = tmp_path / "S1"
    write_sample(local_fs(), str(folder))
    shutil.rmtree(folder / "train_integrated")
    (folder / "frames.tif").write_bytes(b"II*\x00" + bytes(60))
    (folder / "notes.txt").write_text("beam lost at 03:12")
    report = inspect(folder)
    assert list(report.entries) == ["frames.tif", "notes.txt", "train_integrated.json"]
    assert report.entries["frames.tif"].size == 64
    npy = verdict(report, "npy")
    assert not npy.claims and npy.reason.startswith("no train_integrated/ folder in the sample folder; "
                                                     "read anyway as the default format: ")
    assert npy.reason.endswith("train_integrated/sensor_0.npy: file not found")
    assert report.missing == NPY_FILES and npy.score == 0.0
    assert report.notes == [
        "no registered format uses frames.tif, notes.txt; if a detector's format holds the run, install "
        "the package that reads it (entry-point group 'eqegs_repo.raw_formats'; registered now: "
        f"{', '.join(formats.raw_formats())}; docs/formats.md)"]
    assert main(["inspect", str(folder), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["readable"] is False and data["missing"] == NPY_FILES
    assert data["entries"]["notes.txt"] == {"kind": "file", "size": 18, "entries": 0}


def test_a_broken_marker_is_the_problem_and_no_format_is_blamed(sample, capsys):
    with open(f"{sample}/train_integrated.json", "w") as f:
        json.dump({"n_frames": 6, "n_sensors": 3}, f)
    report = inspect(sample)
    assert report.marker is None and not report.readable
    assert report.marker_problem == (f"{sample}/train_integrated.json: the field 'sensor_shape' is missing "
                                     "(required: n_frames, n_sensors, sensor_shape)")
    assert report.missing == ["a valid train_integrated.json"] and report.notes == []
    npy = verdict(report, "npy")
    assert npy.claims and npy.reason == "it claims the folder, but the marker is not valid (see above)"
    main(["inspect", sample])
    assert f"marker: {sample}/train_integrated.json: the field 'sensor_shape' is missing" in capsys.readouterr().out


def test_a_missing_marker_is_missing(sample):
    os.remove(f"{sample}/train_integrated.json")
    report = inspect(sample)
    assert report.missing == ["train_integrated.json"]
    assert report.marker_problem == f"{sample}/train_integrated.json: marker file not found"


def test_files_in_another_folder_are_found_where_they_are(sample, capsys):
    os.rename(f"{sample}/train_integrated", f"{sample}/raw")
    report = inspect(sample)
    npy = verdict(report, "npy")
    assert npy.elsewhere == {name: name.replace("train_integrated/", "raw/") for name in NPY_FILES}
    assert npy.score == 0.5 and report.closest == "npy"
    main(["inspect", sample])
    assert "found raw/velocity.npy, expected train_integrated/velocity.npy" in capsys.readouterr().out


class ToyFormat:
    """A format that claims folders holding ``data.toy`` and cannot open any."""

    name = "toy"

    def guess_can_open(self, fs, folder, names, marker, layout):
        return "data.toy" in names

    def run_files(self, fs, folder, marker, layout):
        return [f"{folder}/data.toy"]

    def open_frames(self, fs, folder, marker, layout):
        raise BadSample(f"{folder}/data.toy: unsupported toy version 7")


class CrashingFormat(ToyFormat):
    """A plug-in with a bug: its guess raises."""

    name = "crashing"

    def guess_can_open(self, fs, folder, names, marker, layout):
        raise ZeroDivisionError("division by zero")


@pytest.fixture
def toy_formats():
    registered = [formats.register_format(ToyFormat()), formats.register_format(CrashingFormat())]
    yield
    for fmt in registered:
        formats.unregister_format(fmt.name)


def test_every_registered_format_reports_and_the_claiming_one_is_closest(sample, toy_formats):
    shutil.rmtree(f"{sample}/train_integrated")
    with open(f"{sample}/data.toy", "wb") as f:
        f.write(b"TOY7")
    report = inspect(sample)
    assert [v.name for v in report.verdicts][-3:] == ["toy", "crashing", "npy"]  # the order of open_run
    toy, crashing, npy = report.verdicts[-3:]
    assert toy.claims and toy.reason == f"{sample}/data.toy: unsupported toy version 7"
    assert crashing.reason == "guess_can_open raised ZeroDivisionError: division by zero"
    assert npy.reason == "no train_integrated/ folder in the sample folder"        # not read: toy claims it
    assert report.closest == "toy" and report.missing == [] and not report.readable


def test_a_format_without_why_not_gets_a_sentence_naming_its_files(sample, toy_formats):
    report = inspect(sample)
    assert report.readable and report.format == "npy"
    assert verdict(report, "toy").reason == "it does not claim the folder (its files: data.toy)"


def test_a_second_claiming_format_is_shadowed_by_the_first(sample):
    class AlsoNpy:
        name = "also-npy"
        guess_can_open = formats.raw_formats()["npy"].guess_can_open
        run_files = formats.raw_formats()["npy"].run_files
        open_frames = formats.raw_formats()["npy"].open_frames

    formats.register_format(AlsoNpy())
    try:
        report = inspect(sample)
    finally:
        formats.unregister_format("also-npy")
    assert report.readable and report.format == "also-npy"
    assert verdict(report, "npy").reason == "it would read the folder, but also-npy claims it first"


def test_a_proposal_folder_points_to_its_samples(sample, tmp_path):
    write_sample(local_fs(), f"{tmp_path}/P/S2")
    report = inspect(f"{tmp_path}/P")
    assert not report.readable and report.missing[0] == "train_integrated.json"
    assert report.notes == ["this is not a sample folder: 2 sample folder(s) 1 level(s) below it (S1, S2); "
                            "inspect one of them"]


def test_a_path_that_is_no_folder_is_refused(sample, capsys):
    with pytest.raises(BadInput, match="nowhere: no such folder"):
        inspect(f"{sample}/nowhere")
    with pytest.raises(BadInput, match="train_integrated.json: expected a sample folder, found a file"):
        inspect(f"{sample}/train_integrated.json")
    assert main(["inspect", f"{sample}/nowhere"]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_a_url_is_inspected_through_fsspec():
    fs = fsspec.filesystem("memory")
    write_sample(fs, "/inspect-test/S1")
    try:
        report = inspect("memory://inspect-test/S1")
        assert report.readable and report.summary["files"]["velocity.npy"] > 0
    finally:
        fs.rm("/inspect-test", recursive=True)


_INSPECT = """
    import eqegs_repo
    report = eqegs_repo.inspect(sys.argv[1])
    print(json.dumps({"readable": report.readable, "kinds": {n: e.kind for n, e in report.entries.items()},
                      "marker": report.marker_problem, "npy": report.verdicts[-1].reason}))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need a POSIX system")
def test_fifos_in_place_of_files_are_reported_never_opened(sample):
    os.remove(f"{sample}/train_integrated/velocity.npy")
    os.mkfifo(f"{sample}/train_integrated/velocity.npy")
    os.mkfifo(f"{sample}/pipe")
    found = isolated(_INSPECT, sample)                   # 20 s at most: opening a FIFO would block
    assert not found["readable"] and found["kinds"]["pipe"] == "other"
    assert found["npy"] == (f"{sample}/train_integrated/velocity.npy: expected a regular file, found not a "
                            "regular file (a FIFO, socket or device?); only regular files are read")
    os.rename(f"{sample}/pipe", f"{sample}/train_integrated.json.tmp")
    os.replace(f"{sample}/train_integrated.json.tmp", f"{sample}/train_integrated.json")
    found = isolated(_INSPECT, sample)
    assert found["marker"].endswith("train_integrated.json: expected a regular file, found not a regular file "
                                    "(a FIFO, socket or device?); only regular files are read")


def test_a_folder_whose_raw_data_are_gone_names_the_apps_stack_a_cook_reads(sample):
    shutil.rmtree(f"{sample}/train_integrated")
    os.makedirs(f"{sample}/reconstruction")
    np.save(f"{sample}/reconstruction/reconstruction.npy", np.zeros((6, 3, 4), np.float32))
    report = inspect(sample)
    assert not report.readable
    assert any("reconstruction/reconstruction.npy (6, 3, 4) of float32 is there: a cook reads it instead "
               "of the raw data" in note for note in report.notes), report.notes
    np.save(f"{sample}/reconstruction/reconstruction.npy", np.zeros((5, 3, 4), np.float32))
    assert any("its 5 frames differ from the marker's n_frames 6" in note for note in inspect(sample).notes)
    with open(f"{sample}/reconstruction/reconstruction.npy", "wb") as f:
        f.write(b"\x93NUMPY")
    assert any("the app's reconstruction stack is there but cannot be read" in note
               for note in inspect(sample).notes)


def test_the_hdf5_format_says_why_it_does_not_claim_a_folder(sample):
    assert verdict(inspect(sample), "hdf5").reason == "no train_integrated.h5 in the sample folder"
