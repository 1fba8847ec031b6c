"""Calibration folders that cannot be raced, blocked or made to hang the listing (issue 20 rows
H1 and H4; docs/robustness.md)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eqegs_repo.cooking import calibration
from eqegs_repo.errors import BadInput
from eqegs_repo.io.calibration_files import MAX_CALIBRATION_FILE_BYTES, hash_calibration_folder
from tests.helpers.cooktrees import PROPOSAL, seeded_tree

ROOT = Path(__file__).resolve().parents[3]
GOOD_VELOCITY = "CALIBRATIONS = {1: lambda measured, n_frames: 1.0 * measured}\n"
EVIL_VELOCITY = """
import pathlib
pathlib.Path(__file__).with_name("ran").write_text("untrusted code ran")
CALIBRATIONS = {1: lambda measured, n_frames: 1.0 * measured}
"""
ANGLE = "import numpy as np\nCALIBRATIONS = {0: lambda two_theta: np.ones_like(two_theta)}\n"


def _folder(path, velocity):
    path.mkdir()
    (path / "calibration_velocity.py").write_text(velocity)
    (path / "calibration_angle.py").write_text(ANGLE)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return seeded_tree(tmp_path_factory.mktemp("robust_calibration"))


# --- H1: the file checked is the file run --------------------------------------------------
def test_a_link_flipped_between_the_trust_check_and_the_read_runs_nothing(tree, tmp_path, monkeypatch):
    monkeypatch.delenv(calibration.TRUST_VARIABLE, raising=False)
    trusted = _folder(tmp_path / "trusted", GOOD_VELOCITY)
    evil = _folder(tmp_path / "evil", EVIL_VELOCITY)
    link = tmp_path / "calibration"
    os.symlink(trusted, link)
    real_check = calibration.is_trusted

    def check_then_flip(folder, allowed):  # the race, made certain: the link flips right after the check
        verdict = real_check(folder, allowed)
        link.unlink()
        os.symlink(evil, link)
        return verdict

    monkeypatch.setattr(calibration, "is_trusted", check_then_flip)
    prop = tree[PROPOSAL]
    tree.trusted_calibration_dirs = [str(trusted)]
    prop.spice.seed("calibration", "S001", folder=str(link), files=hash_calibration_folder(evil))
    try:
        with pytest.raises(BadInput, match=rf"is not a folder you allowed .*\(the file opened is "
                                           rf"{evil}/calibration_velocity.py\)"):
            prop["S001"].cook(use_cache=False)
        assert not (evil / "ran").exists()
        link.unlink()
        os.symlink(trusted, link)
        with pytest.raises(BadInput, match="is not a folder you allowed"):  # the cache key reads the same way
            prop["S001"].cache_status()
        assert not (evil / "ran").exists()
    finally:
        tree.trusted_calibration_dirs = []
        prop.spice.erase("calibration", "S001")


def test_a_file_linked_out_of_a_trusted_folder_is_refused(tree, tmp_path):
    trusted = _folder(tmp_path / "trusted", GOOD_VELOCITY)
    evil = _folder(tmp_path / "evil", EVIL_VELOCITY)
    (trusted / "calibration_velocity.py").unlink()
    os.symlink(evil / "calibration_velocity.py", trusted / "calibration_velocity.py")
    prop = tree[PROPOSAL]
    tree.trusted_calibration_dirs = [str(trusted)]
    prop.spice.seed("calibration", "S001", folder=str(trusted), files=hash_calibration_folder(evil))
    try:
        with pytest.raises(BadInput, match=rf"the file opened is {evil}/calibration_velocity.py"):
            prop["S001"].cook(use_cache=False)
        assert not (evil / "ran").exists()
        (trusted / "calibration_velocity.py").unlink()  # a link that stays inside is followed
        (trusted / "shared").mkdir()
        (trusted / "shared" / "velocity.py").write_text(GOOD_VELOCITY)
        os.symlink(trusted / "shared" / "velocity.py", trusted / "calibration_velocity.py")
        shared = hash_calibration_folder(trusted / "shared")["velocity.py"]
        prop.spice.update("calibration", "S001", folder=str(trusted),
                          files={**hash_calibration_folder(trusted), "calibration_velocity.py": shared})
        assert prop["S001"].cook(use_cache=False).attrs["calibration"]["velocity"].endswith("#1")
    finally:
        tree.trusted_calibration_dirs = []
        prop.spice.erase("calibration", "S001")


# --- H4: a FIFO, a huge file or a hung mount in a calibration folder -----------------------
_LISTING = """
    import json, os, sys, threading, time
    from eqegs_repo import Repository
    from eqegs_repo.cli.main import main
    from eqegs_repo.cooking import calibration
    root, cache, fifo_folder, big_folder, hung_folder = sys.argv[1:]
    repo = Repository(root + "/{proposal}/{sample}", cache_url=cache)
    prop = repo["2025A1234"]
    prop.spice.seed("calibration", "S2", folder=fifo_folder, files={})
    prop.spice.seed("calibration", "S3", folder=big_folder, files={})
    out = {"untrusted": prop.table(check=False).set_index("key")["problem"].to_dict()}
    os.environ[calibration.TRUST_VARIABLE] = os.pathsep.join([fifo_folder, big_folder, hung_folder])
    out["trusted"] = prop.table(check=False).set_index("key")["problem"].to_dict()
    out["ls"] = main(["ls", root, "2025A1234", "--cache-url", cache])
    out["cook"] = main(["cook", root, "2025A1234", "S2", "--cache-url", cache])
    real_open = os.open
    def hung(path, *args, **kwargs):  # a file on a mount that never answers
        if str(path).startswith(hung_folder):
            time.sleep(3600)
        return real_open(path, *args, **kwargs)
    os.open = hung
    calibration.FINGERPRINT_TIMEOUT_S = 0.5
    prop.spice.update("calibration", "S2", folder=hung_folder, files={})
    prop.spice.update("calibration", "S3", folder=hung_folder, files={})
    start = time.monotonic()
    out["hung"] = prop.table(check=False).set_index("key")["problem"].to_dict()
    out["hung_s"] = time.monotonic() - start
    print(json.dumps(out))
"""


def test_a_fifo_huge_file_or_hung_mount_in_a_calibration_folder_never_blocks_listing(tmp_path):
    from tests.helpers.treeutil import local_fs, write_tree

    write_tree(local_fs(), str(tmp_path / "tree"), {"2025A1234": ["S001", "S2", "S3"]})
    fifo_folder = _folder(tmp_path / "fifo", GOOD_VELOCITY)
    os.mkfifo(fifo_folder / "sp_param.json")
    big_folder = _folder(tmp_path / "big", GOOD_VELOCITY)
    with open(big_folder / "data_table.csv", "wb") as f:
        f.truncate(MAX_CALIBRATION_FILE_BYTES + 1)  # sparse: no disk used
    hung_folder = _folder(tmp_path / "hung", GOOD_VELOCITY)
    args = [str(tmp_path / "tree"), str(tmp_path / "cache"), str(fifo_folder), str(big_folder), str(hung_folder)]
    prelude = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(calibration.TRUST_VARIABLE, None)
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(_LISTING), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    out = json.loads(done.stdout.splitlines()[-1])
    # not trusted: refused before anything in the folder is opened (the FIFO is never touched)
    assert out["untrusted"]["S001"] == ""
    assert f"calibration.folder = '{fifo_folder}'" in out["untrusted"]["S2"]
    assert "is not a folder you allowed" in out["untrusted"]["S2"]
    # trusted: only regular files of a bounded size are read, each refusal naming the file
    assert out["trusted"]["S001"] == ""
    assert out["trusted"]["S2"].startswith(f"{fifo_folder}/sp_param.json: expected a regular calibration "
                                           "file, found a FIFO")
    assert out["trusted"]["S3"].startswith(f"{big_folder}/data_table.csv: calibration file of "
                                           f"{MAX_CALIBRATION_FILE_BYTES + 1} bytes; expected at most "
                                           f"{MAX_CALIBRATION_FILE_BYTES} bytes")
    assert out["ls"] == 0 and f"{fifo_folder}/sp_param.json: expected a regular" in done.stdout
    assert out["cook"] == 1
    assert f"eqegs: error: {fifo_folder}/sp_param.json: expected a regular calibration file" in done.stderr
    # a mount that never answers: the wait is bounded, and a folder still hung is refused at once
    assert out["hung"]["S001"] == ""
    assert f"calibration folder {hung_folder} (" in out["hung"]["S2"]
    assert "did not answer within 0.5 s while its files were hashed" in out["hung"]["S2"]
    assert "has still not answered an earlier read" in out["hung"]["S3"]
    assert out["hung_s"] < 10
