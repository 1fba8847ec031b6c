"""Folder names that a locale, macOS or a terminal make hostile (issue 20 rows M6, M13, L6;
docs/robustness.md#folder-names-issue-20-m6-m13-l6)."""
import os
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import pytest

from eqegs_repo import BadInput, Repository, batch
from eqegs_repo.cli.main import main
from eqegs_repo.cooking.inputs import background_users, is_background_run
from eqegs_repo.errors import KeyNotFound
from tests.helpers.treeutil import local_fs, write_tree

ROOT = Path(__file__).resolve().parents[2]
ROOT_ARGS = "--spice-url", "memory://"
GEL2, GEL3 = "ゲル002", "ゲル003"  # as typed: composed (NFC)


def nfd(text):
    return unicodedata.normalize("NFD", text)


def _repo(tmp_path, proposals):
    write_tree(local_fs(), str(tmp_path), proposals)
    return Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)


# --- M6: a name the locale cannot encode -----------------------------------------------------
_LISTING = """
import json, sys, warnings
from eqegs_repo import Repository
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    repo = Repository(sys.argv[1] + "/{proposal}/{sample}", spice_url="memory://", cache_url=False)
    proposals, samples = repo.keys(), repo["2025A1234"].keys()
    rows = len(repo["2025A1234"].table(check=False))
print(json.dumps({"proposals": proposals, "samples": samples, "rows": rows,
                  "warnings": [str(w.message) for w in caught]}, ensure_ascii=True))
"""


def _under_c_locale(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIO"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, timeout=120,
                          check=False)


def test_a_folder_name_the_locale_cannot_encode_is_skipped_with_a_warning_and_the_listing_goes_on(tmp_path):
    import json

    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001", GEL2, "S3"], "試料": ["S001"]})
    broken = tmp_path / "2025A1234" / "S3" / "train_integrated.json"
    broken.write_text("not json " * 20)  # a long problem: shortened with "…", which ASCII lacks
    done = _under_c_locale("-c", _LISTING, str(tmp_path))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    found = json.loads(done.stdout.decode().splitlines()[-1])
    assert found["proposals"] == ["2025A1234"] and found["samples"] == ["S001", "S3"] and found["rows"] == 2
    assert len(found["warnings"]) == 2
    assert f"{tmp_path}/2025A1234/{GEL2} is not listed: its sample key '{GEL2}' is not usable (its name is " \
           "not text in the file system's encoding (ascii); run under a UTF-8 locale" in found["warnings"][1]

    for args in ([], ["2025A1234"]):
        done = _under_c_locale("-m", "eqegs_repo", "ls", str(tmp_path), *args, *ROOT_ARGS, "--cache-url", "none")
        out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")
        assert done.returncode == 0 and "Traceback" not in err, err[-2000:]
        assert all(line.startswith("eqegs: warning: ") and "is not listed" in line for line in err.splitlines())
        assert len(err.splitlines()) == 2  # each such folder named once
        assert "2025A1234/\\u30b2\\u30eb002 is not listed" in err  # shown, escaped for an ASCII terminal
        assert "/\\u8a66\\u6599 is not listed: its proposal key" in err
    assert "S001" in out and "S3" in out and "\\u2026" in out  # the shortened problem printed, not a crash


# --- M13: NFC and NFD spellings of one key ---------------------------------------------------
def test_keys_are_compared_in_nfc_so_typed_names_find_folders_copied_from_macos(tmp_path):
    repo = _repo(tmp_path, {"2025A1234": ["S001", nfd(GEL2), nfd(GEL3)]})
    prop = repo["2025A1234"]
    assert prop.keys() == ["S001", nfd(GEL2), nfd(GEL3)]  # the folders' own names
    assert GEL2 in prop and prop[GEL2].key == nfd(GEL2) and prop[GEL2].path.endswith(nfd(GEL2))
    prop.spice.update("e_spectrum", GEL2, n_mc=30)  # an anchor typed in NFC applies to the NFD folders
    assert [prop[k].spice["e_spectrum"]["n_mc"] == 30 for k in prop] == [False, True, True]
    prop.spice.update("e_spectrum", nfd(GEL2), n_mc=40)  # the same anchor: a new revision, no conflict
    assert prop[GEL3].spice["e_spectrum"]["n_mc"] == 40 and not prop.spice.conflicts()
    assert [s.key for s in batch.select_samples(repo, samples="ゲル*")] == [nfd(GEL2), nfd(GEL3)]
    prop.spice.update("q_integration", bg_sample_id=GEL3)  # a background run named in NFC
    assert is_background_run(prop[GEL3], prop[GEL3].spice)
    assert background_users(prop[GEL3]) == ["S001", nfd(GEL2)]
    with pytest.raises(KeyNotFound, match=f"no sample 'ゲル009'; closest: '{nfd(GEL3)}', '{nfd(GEL2)}'") as caught:
        prop["ゲル009"]
    assert "normalisation" not in str(caught.value)
    assert str(KeyNotFound("sample", GEL2, [nfd(GEL2)])).endswith(
        f"closest: '{nfd(GEL2)}' (differs only by Unicode normalisation, NFC vs NFD: look it up as it is)")


# --- L6: control characters ------------------------------------------------------------------
def test_control_characters_in_names_are_escaped_in_text_views_and_kept_out_of_file_names(tmp_path, capsys):
    from spice.display import text_table, visible

    red, newline = "S\x1b[31mRED", "S\n2"
    repo = _repo(tmp_path, {"2025A1234": ["S001", red, newline]})
    (tmp_path / "2025A1234" / "S..\x1b[2J").mkdir()  # refused, and named in a warning
    (tmp_path / "2025A1234" / "S..\x1b[2J" / "train_integrated.json").write_text("{}")
    assert visible("a\x1b[2Jb\x9b\tc\n") == "a\\x1b[2Jb\\x9b\\tc\\n" and visible("x\ny", keep="\n") == "x\ny"
    prop = repo["2025A1234"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shown = repr(prop.table(check=False))
    assert "\x1b" not in shown and "S\\x1b[31mRED" in shown and "S\\n2" in shown
    assert "\x1b" not in text_table(["key"], [[red]]) and "S\\x1b[31mRED" in text_table(["key"], [[red]])
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["ls", str(tmp_path), "2025A1234", *ROOT_ARGS, "--cache-url", "none"]) == 0
        assert main(["info", str(tmp_path), "2025A1234", red, *ROOT_ARGS, "--cache-url", "none"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "S\\x1b[31mRED" in out and "<SampleInfo 2025A1234/S\\x1b[31mRED>" in out
    listing = out.split("<SampleInfo")[0].splitlines()
    assert len(listing) == 4 and "S\\n2" in listing[2]  # the new line shown, not obeyed
    assert len(err.splitlines()) == 2 and "S..\\x1b[2J is not listed" in err  # one line per command
    assert all(line.startswith("eqegs: warning: ") for line in err.splitlines())
    with pytest.raises(BadInput, match=r"'reconstruction_S\\n2\.zip' holds the control character '\\n'; "
                                       r"names written by the library hold none: rename the sample folder"):
        prop[newline].export("reconstruction")
    assert not (tmp_path / "2025A1234" / "download").exists() and not (tmp_path / "2025A1234" / newline /
                                                                        "reconstruction").exists()


def test_control_characters_never_reach_a_cache_folder_name(tmp_path):
    """L6: the cache folder of a sample named with a newline or an escape is printable."""
    from eqegs_repo.cooking.cache import DatasetCache

    folder = DatasetCache(str(tmp_path)).folder("file:///t/P\n1/S\x1b2", "P\n1", "S\x1b2", "reconstruction")
    name = folder.rsplit("/", 2)[1]
    assert name.startswith("P_1__S_2__") and name.isprintable()
