"""The physics checks of a cooked sample: named warnings, ``attrs["physics_checks"]``, the
reanalysis table's ``checks`` column and the ``eqegs cook`` / ``eqegs reanalyze`` output
(docs/physics.md#checks-where-the-physics-cannot-hold). The kernel's cases are in
tests/eqegs_repo/kernels/test_physics_checks.py."""
import warnings

import pytest

from eqegs_repo import Repository, batch
from eqegs_repo.cli.main import main
from eqegs_repo.errors import FewFramesWarning, PhysicsWarning, TruncatedWindowWarning
from tests.helpers import cooktrees

P = cooktrees.PROPOSAL


def tree(base, **params):
    """A sample and its background of the tiny canvas, spice and cache in folders under ``base``
    (so that the command line, another Repository, sees them); returns (repository, URL, spice, cache)."""
    run = cooktrees.image_params(**params)
    cooktrees.write_runs(base, run, [1])
    url, spice, cache = f"{base}/{{proposal}}/{{sample}}", str(base / "spice"), str(base / "cache")
    repo = Repository(url, spice_url=spice, cache_url=cache)
    cooktrees.seed_spice(repo[P], run, bg_n_points=10, n_mc=20)
    return repo, url, spice, cache


def cooked_with_warnings(sample, **overrides):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = sample.cook(**overrides)
    return ds, [w for w in caught if issubclass(w.category, PhysicsWarning)]


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """1024 frames over +-10 mm/s: every check passes."""
    return tree(tmp_path_factory.mktemp("sound"))


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """The demo's drive, +-2 mm/s (256 frames): the window cuts the line's tails."""
    return tree(tmp_path_factory.mktemp("truncated"), n_frames=256, v_max_mm_s=2.0)


def test_a_sound_sample_is_silent_and_says_so(sound):
    repo = sound[0]
    ds, caught = cooked_with_warnings(repo[P]["S001"])
    assert caught == []
    assert ds.attrs["physics_checks_failed"] == []
    assert [c["name"] for c in ds.attrs["physics_checks"]] == ["energy_step", "window", "kept_frames", "f0_vs_f_q"]
    assert all(c["value"] is not None and not c["failed"] for c in ds.attrs["physics_checks"])
    row = batch.cook_sample(repo[P]["S001"])
    assert row["status"] == "up-to-date" and row["checks"] == ""


def test_a_truncated_window_warns_by_name_and_flags_the_result(truncated):
    sample = truncated[0][P]["S001"]
    ds, caught = cooked_with_warnings(sample)
    assert [w.category for w in caught] == [TruncatedWindowWarning]
    assert str(caught[0].message).startswith(f"{P}/S001: energy window")
    assert ds.attrs["physics_checks_failed"] == ["window"]
    window = next(c for c in ds.attrs["physics_checks"] if c["name"] == "window")
    assert window["failed"] and window["bound"] == "min" and window["threshold"] == 5.0
    assert 1.0 < window["value"] < 5.0
    assert float(ds.tau) > 0  # the sample still cooks
    # from the cache: the same flag and the same warning
    again, caught = cooked_with_warnings(sample)
    assert again.attrs["fingerprint"] == ds.attrs["fingerprint"]
    assert [w.category for w in caught] == [TruncatedWindowWarning]


def test_a_threshold_comes_from_the_e_spectrum_record_or_an_override(truncated, sound):
    ds, caught = cooked_with_warnings(truncated[0][P]["S001"], check_min_window_ratio=1.0)
    assert caught == [] and ds.attrs["physics_checks_failed"] == []
    assert next(c for c in ds.attrs["physics_checks"] if c["name"] == "window")["threshold"] == 1.0
    ds, caught = cooked_with_warnings(sound[0][P]["S001"], check_min_kept_frames=2000)
    assert [w.category for w in caught] == [FewFramesWarning]
    assert ds.attrs["physics_checks_failed"] == ["kept_frames"]


def test_the_reanalysis_row_names_the_failed_check_with_value_and_threshold(truncated):
    row = batch.cook_sample(truncated[0][P]["S001"])
    assert row["status"] in ("ok", "up-to-date") and row["error"] == ""
    name, value, sign, threshold = row["checks"].split()
    assert (name, sign, threshold) == ("window", "<", "5") and float(value) < 5


def test_the_command_line_shows_the_failed_checks(truncated, sound, capsys):
    _, url, spice, cache = truncated
    assert main(["cook", url, P, "S001", "--spice-url", spice, "--cache-url", cache]) == 0
    out, err = capsys.readouterr()
    assert "physics check flagged: window: energy window" in out and "warning" not in err
    _, url_ok, spice_ok, cache_ok = sound
    assert main(["cook", url_ok, P, "S001", "--spice-url", spice_ok, "--cache-url", cache_ok]) == 0
    assert "physics checks: all 4 passed" in capsys.readouterr().out
    # cached: the reanalysis needs no cluster
    assert main(["reanalyze", url, "--spice-url", spice, "--cache-url", cache, "--samples", "S001",
                 "--no-progress"]) == 0
    out, err = capsys.readouterr()
    line = next(line for line in out.splitlines() if "S001" in line)
    assert "up-to-date" in line and "window" in line and "< 5" in line
    assert "1 flagged by the physics checks" in err


def test_every_q_range_of_a_q_resolved_result_is_checked(truncated):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = truncated[0][P]["S001"].q_resolved([(10.0, 12.0), (12.0, 14.0)])
    flagged = [w for w in caught if issubclass(w.category, PhysicsWarning)]
    assert ds.attrs["physics_checks_failed"] == [["window"], ["window"]]
    assert [len(checks) for checks in ds.attrs["physics_checks"]] == [4, 4]
    assert [w.category for w in flagged] == [TruncatedWindowWarning] * 2
    assert "q range [10, 12] nm^-1" in str(flagged[0].message)
