import pytest

from eqegs_repo import naming
from eqegs_repo.errors import BadInput
from eqegs_repo.urls import UrlPattern


def test_natural_order_puts_s2_before_s10():
    assert naming.natural_sorted(["S10", "S2", "S1", "S10a", "S9"]) == ["S1", "S2", "S9", "S10", "S10a"]
    assert naming.natural_sorted(["2025B1", "2025A10", "2025A9"]) == ["2025A9", "2025A10", "2025B1"]


def test_handles_prefix_digits_and_replace_invalid_characters():
    h = naming.handles_for(["2025A1234", "S-01", "x.y"], "p")
    assert h == {"2025A1234": "p2025A1234", "S-01": "S_01", "x.y": "x_y"}
    assert all(v.isidentifier() for v in h.values())


def test_handles_never_shadow_reserved_names_or_keywords():
    h = naming.handles_for(["all", "table", "class", "S1"], "s", reserved={"all", "table"})
    assert h == {"all": "s_all", "class": "s_class", "S1": "S1", "table": "s_table"}


def test_colliding_handles_stay_distinct_and_deterministic():
    keys = ["s-1", "s.1", "s_1"]
    first = naming.handles_for(keys, "s")
    again = naming.handles_for(list(reversed(keys)), "s")
    assert first == again
    assert len(set(first.values())) == 3
    # a generated suffix must not take the handle of a real key
    h = naming.handles_for(["a-1", "a.1", "a_1_2"], "s")
    assert len(set(h.values())) == 3


@pytest.mark.parametrize("key", ["a/b", "..", "x..y", ".hidden", "", "a\\b"])
def test_keys_that_leave_their_folder_are_refused(key):
    with pytest.raises(BadInput, match="sample key"):
        naming.check_key(key, "sample")


def test_url_fields_are_filled_and_split():
    p = UrlPattern.parse("/UserData/{account}/EQEGS/{proposal}/{sample}", {"account": "u1"})
    assert p.root == "/UserData/u1/EQEGS"
    assert p.sample_path("2025A1", "S01") == "/UserData/u1/EQEGS/2025A1/S01"
    q = UrlPattern.parse("memory://base/p{proposal}/raw/s_{sample}")
    assert (q.protocol, q.root, q.middle) == ("memory", "/base", ("raw",))
    assert q.proposal_key("p2025A1") == "2025A1" and q.proposal_key("x2025") is None
    assert q.sample_key("s_S1") == "S1" and q.sample_key("S1") is None


@pytest.mark.parametrize("url, message", [
    ("/data/{sample}", r"missing: \{proposal\}"),
    ("/data/{proposal}", r"missing: \{sample\}"),
    ("/data/{proposal}_{sample}", "separate segments"),
    ("/data/{sample}/{proposal}", "must come before"),
    ("/data/{proposal}/{sample}/x", "last one"),
])
def test_bad_url_patterns_are_refused_with_the_reason(url, message):
    with pytest.raises(BadInput, match=message):
        UrlPattern.parse(url)


def test_missing_and_unused_fields_are_named():
    with pytest.raises(BadInput, match=r"\{account\}.*account=") as exc:
        UrlPattern.parse("/U/{account}/EQEGS/{proposal}/{sample}")
    assert "Repository(url, account=...)" in str(exc.value)
    with pytest.raises(BadInput, match="beamline"):
        UrlPattern.parse("/U/{proposal}/{sample}", {"beamline": "x"})
    with pytest.raises(BadInput, match="folder name"):
        UrlPattern.parse("/U/{account}/{proposal}/{sample}", {"account": "../etc"})
