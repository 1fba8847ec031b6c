"""The proposal's background run has its own status in every view, and cooking a step that does
not apply to it says what works instead."""
import pytest

from eqegs_repo import BadInput
from eqegs_repo.cli.main import main
from eqegs_repo.display import sample_status
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params, repository, seed_spice, write_runs


@pytest.fixture(scope="module")
def proposal(tmp_path_factory):
    base = tmp_path_factory.mktemp("background")
    params = image_params(n_frames=64)
    write_runs(base, params, [1, 2])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params)
    return repo[PROPOSAL]


def test_table_repr_and_html_call_it_background_and_name_its_samples(proposal):
    table = proposal.table()
    rows = {row["key"]: row for row in table.to_dict("records")}
    assert rows[BACKGROUND]["role"] == "background" and rows[BACKGROUND]["background_for"] == "S001,S002"
    assert [sample_status(rows[key]) for key in (BACKGROUND, "S001")] == ["background", "not cooked"]
    line = next(line for line in repr(table).splitlines() if line.lstrip().startswith(BACKGROUND))
    assert "..-" in line and "for S001,S002" in line          # e_spectrum_and_isf does not apply
    sample = proposal[BACKGROUND]
    assert "background run of S001, S002 (reconstruction, q_integration apply)" in repr(sample)
    assert "background run" not in repr(proposal["S001"])
    html = sample._repr_html_()
    assert ">background</span>" in html and "does not apply" in html
    assert "3 samples: 2 not cooked, 1 background" in proposal._repr_html_()


def test_info_says_which_samples_use_it_and_what_was_cooked(proposal):
    info = proposal[BACKGROUND].info()
    assert info["background_for"] == ["S001", "S002"] and info["cooked"] == []
    assert "background run" in info["role"] and "role" not in proposal["S001"].info()


def test_cooking_its_e_spectrum_refuses_saying_what_works_instead(proposal, capsys):
    with pytest.raises(BadInput) as refused:
        proposal[BACKGROUND].cook()
    message = str(refused.value)
    assert "cook reconstruction or q_integration instead" in message
    assert "S001, S002 subtract it as their background" in message
    repo = proposal.repository
    args = [repo.root, PROPOSAL, BACKGROUND, "--spice-url", repo.spice_url, "--cache-url", repo.cache_url]
    assert main(["cook", *args]) == 1
    assert "cook reconstruction or q_integration instead" in capsys.readouterr().err
    assert main(["ls", *args[:2], *args[3:]]) == 0
    assert "for S001,S002" in capsys.readouterr().out
