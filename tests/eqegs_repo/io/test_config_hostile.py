"""eqegs.yaml as untrusted input (issue 20, rows H2, H3 and L1): the file lives in the data tree,
so whatever it holds, opening the repository gives one clear error naming it, at once."""
import getpass
import json
import os

import fsspec
import pytest

from eqegs_repo import BadInput, Repository
from eqegs_repo.io import config
from tests.eqegs_repo.io.test_config import root, url  # noqa: F401 - root is a fixture
from tests.eqegs_repo.params.test_spice_hostile import BOMB, isolated


def refusal(root, text):
    """The message of opening the tree whose eqegs.yaml holds ``text``."""
    (root / "eqegs.yaml").write_text(text)
    with pytest.raises(BadInput) as err:
        Repository(url(root))
    return str(err.value)


_OPEN_EACH = """
    from eqegs_repo import Repository
    from eqegs_repo.cli.main import main
    root, out = sys.argv[1], {}
    for name, text in json.loads(sys.stdin.read()).items():
        if text is not None:
            with open(root + "/eqegs.yaml", "w") as f:
                f.write(text)
        try:
            Repository(root + "/{proposal}/{sample}")
            out[name] = "opened"
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
        code = main(["ls", root])
        out[name + " (eqegs ls)"] = code
    print(json.dumps(out))
"""


def test_an_alias_bomb_in_a_value_is_refused_before_it_is_expanded(root):
    texts = {"value": f"cache_url: {BOMB}\n",
             "unknown key": f"cache_urls: {BOMB}\n",
             "key": f"? {BOMB}\n: 1\n",
             "recursive": "spice_url: &r [*r]\n",
             "small": "cache_url: &a ../cache\nspice_url: *a\n"}
    found = isolated(_OPEN_EACH, str(root), stdin=json.dumps(texts))  # 20 s, 3 GB at most
    path = str(root / "eqegs.yaml")
    for name in ("value", "unknown key", "recursive", "small"):
        setting = {"value": "'cache_url' (line 1)", "unknown key": "'cache_urls' (line 1)",
                   "recursive": "'spice_url' (line 1)", "small": "'spice_url' (line 2)"}[name]
        assert found[name] == (f"BadInput: {path}: setting {setting}: expected a plain value, "
                               "found a YAML alias (*name); aliases are refused before they are "
                               "expanded"), found
        assert found[f"{name} (eqegs ls)"] == 1
    assert found["key"] == f"BadInput: {path}, line 1: expected a setting name (text), found a list"


def test_a_value_in_an_error_is_cut_short(root):
    message = refusal(root, f"cache_url: ['{'x' * 20000}', 2]\n")
    assert message.startswith(f"{root}/eqegs.yaml: cache_url must be a path or URL (text), found "
                              "['xxxx")
    assert "(20000 characters)" in message and len(message) < 400


def test_a_fifo_or_a_device_never_blocks_or_fills_memory(root):
    path = root / "eqegs.yaml"
    os.mkfifo(path)
    fifo = isolated(_OPEN_EACH, str(root), stdin=json.dumps({"fifo": None}))  # 20 s at most
    path.unlink()
    os.symlink("/dev/zero", path)
    zero = isolated(_OPEN_EACH, str(root), stdin=json.dumps({"zero": None}))  # 3 GB at most
    for found, name in ((fifo, "fifo"), (zero, "zero")):
        assert found[name] == (f"BadInput: {path}: expected a regular file, found not a regular "
                               "file (a FIFO, socket or device?); only regular files are read")
        assert found[f"{name} (eqegs ls)"] == 1


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(root, monkeypatch):
    size = 64 * 1024 + 1                                        # the stated limit, plus one
    text = "cache_url: ../cache\n# " + "x" * (size - 23) + "\n"
    assert len(text) == size
    message = refusal(root, text)
    assert message == (f"{root}/eqegs.yaml: expected a small settings file (at most 65536 bytes), "
                       f"found {size} bytes; refused before reading")
    (root / "eqegs.yaml").write_text(text[:size - 2] + "\n")
    assert Repository(url(root)).cache_url == str(root.parent / "cache")  # at the limit: read
    opened = []
    real_open = fsspec.implementations.local.LocalFileSystem.open

    def reporting_open(fs, path, *args, **kwargs):
        opened.append(path)
        return real_open(fs, path, *args, **kwargs)

    monkeypatch.setattr(fsspec.implementations.local.LocalFileSystem, "open", reporting_open)
    (root / "eqegs.yaml").write_text(text)
    with pytest.raises(BadInput, match="at most 65536 bytes"):
        Repository(url(root))
    assert not any(p.endswith("eqegs.yaml") for p in opened)      # refused by its size alone


def test_nesting_is_refused_before_the_parser_sees_it(root):
    assert refusal(root, "cache_url: " + "[" * 60000 + "\n") == (
        f"{root}/eqegs.yaml: expected a flat mapping of settings, found collections nested "
        "deeper than 16 levels; refused before reading")


@pytest.mark.parametrize("written, resolved, reason", [
    ("/", "", "the root of a filesystem"),
    ("../../../../../../../../../../../..", " (/)", "the root of a filesystem"),
    ("/tmp", "", "a folder directly under the root of a filesystem"),
    ("/etc/eqegs-cache", "", "inside the system folder /etc"),
    ("/usr/local/cache", "", "inside the system folder /usr"),
    ("/proc/self/cache", "", "inside the system folder /proc"),
])
@pytest.mark.parametrize("key", ["cache_url", "spice_url"])
def test_a_cache_at_a_root_or_in_a_system_folder_is_refused(root, key, written, resolved, reason):
    message = refusal(root, f"{key}: {written}\n")
    assert message.startswith(f"{root}/eqegs.yaml: {key}: expected a folder of its own, found "
                              f"'{written}'{resolved}, {reason}; refused: a filesystem root, a "
                              "folder directly under one, the home folder itself, and anything "
                              "inside /bin, /boot, /dev, /etc,")
    with pytest.raises(BadInput, match="expected a folder of its own"):
        config.write_config(str(root), {key: written}, overwrite=True)


def test_a_link_to_the_root_and_the_home_folder_itself_are_refused(root, tmp_path, monkeypatch):
    os.symlink("/", tmp_path / "to-root")
    message = refusal(root, "cache_url: ../to-root/cache\n")
    assert "found '../to-root/cache' (/cache), a folder directly under the root" in message
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert f"found '~' ({home}), the home folder itself" in refusal(root, "cache_url: '~'\n")
    (root / "eqegs.yaml").write_text("cache_url: ~/eqegs-cache\n")
    assert Repository(url(root)).cache_url == str(home / "eqegs-cache")


def test_a_home_folder_is_expanded_and_an_unknown_user_is_refused(root):
    user = getpass.getuser()
    (root / "eqegs.yaml").write_text(f"cache_url: ~{user}/x/eqegs-cache\n")
    assert Repository(url(root)).cache_url == os.path.expanduser(f"~{user}/x/eqegs-cache")
    message = refusal(root, "cache_url: ~nosuchuser/x\n")
    assert message == (f"{root}/eqegs.yaml: cache_url: expected ~/..., ~<user>/..., an absolute "
                       "path, a path relative to the file's folder or a URL, found "
                       "'~nosuchuser/x': no user 'nosuchuser' is known on this machine (no home "
                       "folder)")


@pytest.mark.parametrize("text, found", [
    ("cache_url: ../a\nspice_url: ../b\ncache_url: ../c\n",
     "setting 'cache_url' is given twice (lines 1 and 3)"),
    ("spice_url: x\n'spice_url': y\n", "setting 'spice_url' is given twice (lines 1 and 2)"),
])
def test_a_setting_given_twice_is_refused_naming_it_and_the_file(root, text, found):
    assert refusal(root, text) == f"{root}/eqegs.yaml: {found}; expected each setting once"


def test_a_merge_key_is_no_way_around_the_rules(root):
    message = refusal(root, "<<: {cache_url: /}\ncache_url: ../cache\n")
    assert message == f"{root}/eqegs.yaml: unknown setting '<<' (known: cache_url, spice_url)"


@pytest.mark.parametrize("value, reason", [
    ("!!python/object/apply:os.system ['echo unsafe']", "could not determine a constructor"),
    ("9" * 5000, "(4300 digits) for integer string conversion: value has 5000 digits)"),
    ("2025-13-45", "month must be in 1..12)"),
])
def test_a_value_the_safe_loader_refuses_names_the_setting(root, value, reason):
    message = refusal(root, f"cache_url: {value}\n")
    assert message.startswith(f"{root}/eqegs.yaml: setting 'cache_url': expected a plain YAML "
                              "value, found one the safe loader refuses (")
    assert reason in message and "\n" not in message and len(message) < 400
