"""eqegs.yaml: one repository configuration read by Repository and every eqegs command."""
import re

import fsspec
import pytest

from eqegs_repo import BadInput, Repository
from eqegs_repo.cli.common import open_repository
from eqegs_repo.cli.main import build_parser
from eqegs_repo.io import config
from tests.helpers.treeutil import write_tree


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "EQEGS"
    write_tree(fsspec.filesystem("file"), str(base), {"2025A1234": ["S1", "S2"]})
    return base


def url(root):
    return f"{root}/{{proposal}}/{{sample}}"


def test_without_a_file_the_built_in_defaults_apply(root, monkeypatch):
    monkeypatch.setenv("EQEGS_CACHE_DIR", "/somewhere/cache")
    repo = Repository(url(root))
    assert repo.config.path is None and repo.cache_url == "/somewhere/cache" and repo.spice_url is None


def test_relative_paths_are_taken_from_the_file_and_arguments_win(root, tmp_path, monkeypatch):
    monkeypatch.setenv("EQEGS_CACHE_DIR", "/somewhere/cache")
    written = config.write_config(str(root), {"cache_url": "../cache", "spice_url": "spice-records"})
    assert written == f"{root}/eqegs.yaml"
    text = (root / "eqegs.yaml").read_text()
    assert "cache_url: ../cache" in text and text.startswith("# eqegs.yaml")
    repo = Repository(url(root))
    assert repo.cache_url == str(tmp_path / "cache")              # the file wins over the env variable
    assert repo.spice_url == f"{root}/spice-records"
    repo.p2025A1234.spice.seed("q_range", q_min=10.0, q_max=12.0)
    assert list((root / "spice-records" / "proposals" / "2025A1234").rglob("*.yaml"))
    assert Repository(url(root), cache_url="/elsewhere").cache_url == "/elsewhere"
    with pytest.raises(BadInput, match="already exists; pass overwrite=True"):
        config.write_config(str(root), {"cache_url": "x"})
    config.write_config(str(root), {"cache_url": False}, overwrite=True)
    assert Repository(url(root)).cache is None                   # false: no cache


def test_the_command_line_opens_the_same_cache(root, tmp_path):
    config.write_config(str(root), {"cache_url": "../shared-cache"})
    args = build_parser().parse_args(["ls", str(root)])
    assert open_repository(args).cache_url == str(tmp_path / "shared-cache")
    args = build_parser().parse_args(["ls", str(root), "--cache-url", "/mine"])
    assert open_repository(args).cache_url == "/mine"


@pytest.mark.parametrize("text, message", [
    ("cache_ur: ../cache\n", "unknown setting 'cache_ur' (closest: cache_url"),
    ("- cache_url\n", "expected a mapping of settings"),
    ("cache_url: [1, 2]\n", "cache_url must be a path or URL"),
    ("cache_url: {a: 1\n", "is not valid YAML"),
    ("cache_url: !!python/object/apply:os.system ['echo unsafe']\n", "the safe loader refuses"),
])
def test_a_bad_file_is_a_clear_error_naming_it(root, text, message):
    (root / "eqegs.yaml").write_text(text)
    with pytest.raises(BadInput, match=re.escape(message)) as err:
        Repository(url(root))
    assert str(root / "eqegs.yaml") in str(err.value)


def test_other_filesystems_resolve_relative_paths_on_their_own_protocol(memroot):
    fs, base = memroot
    write_tree(fs, f"{base}/EQEGS", {"2025A1234": ["S1"]})
    config.write_config(f"memory://{base}/EQEGS", {"cache_url": "../cache"})
    repo = Repository(f"memory://{base}/EQEGS/{{proposal}}/{{sample}}")
    assert repo.cache_url == f"memory://{base}/cache"


def test_a_setting_name_that_is_not_one_is_refused():
    with pytest.raises(KeyError, match="not a repository setting"):
        config.RepositoryConfig(None, {}).get("cache")
