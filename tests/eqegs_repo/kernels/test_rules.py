"""One place checks each rule (eqegs_repo.kernels.rules): the q range and the ROI corners give the
same message through a spice record, a cook or export override, and the kernels; and no caller
checks the rule on its own (replacing the owner changes every message)."""
import numpy as np
import pytest

import spice
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import rules
from eqegs_repo.kernels.reconstruction import validate_roi
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, truth, write_runs

PARAMS = image_params(n_frames=64)
CANVAS = (64, 48)  # (H, W) of the tiny preset


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("rules")
    write_runs(base, PARAMS, [1])
    repo = repository(base, cache=False)
    seed_spice(repo[PROPOSAL], PARAMS)
    return repo


def sample(repo):
    return repo[PROPOSAL]["S001"]


def kernel_spectra(q_min, q_max):
    """energy_spectra on 16 frames and one q bin at 12 nm^-1 (the q range is checked first)."""
    velocity = np.linspace(-10.0, 10.0, 16)
    counts = np.ones(16)
    return es.energy_spectra(counts, counts, counts[:, None], counts[:, None], np.array([12.0]), np.ones(1),
                             velocity, q_min=q_min, q_max=q_max)


def q_range_messages(repo, q_min, q_max):
    """The messages of the same q range given to spice, to cook and export as overrides, to the
    energy_spectra kernel and to the simulator's truth; each path must refuse it."""
    messages = {}
    if q_min is not None and q_max is not None:  # a record may leave an end unset
        with pytest.raises(spice.SpiceValidationError) as info:
            repo[PROPOSAL].spice.seed("q_range", "S001", q_min=q_min, q_max=q_max)
        messages["spice seed"] = str(info.value)
    for name, call in {
        "cook": lambda: sample(repo).cook(q_min=q_min, q_max=q_max),
        "export": lambda: sample(repo).export("e_spectrum_and_isf", q_min=q_min, q_max=q_max),
        "kernel": lambda: kernel_spectra(q_min, q_max),
        "simulator truth": lambda: truth(PARAMS).isf_in_q_range(q_min, q_max, np.array([10.0])),
    }.items():
        with pytest.raises(BadInput) as info:
            call()
        messages[name] = str(info.value)
    return messages


@pytest.mark.parametrize("q_min, q_max", [(13.0, 12.0), (12.0, 12.0), (None, 12.0), (11.0, None)])
def test_a_bad_q_range_gives_the_owners_message_on_every_path(tree, q_min, q_max):
    expected = rules.q_range_problems(q_min, q_max)
    assert len(expected) == 1
    for path, message in q_range_messages(tree, q_min, q_max).items():
        assert expected[0] in message, path
    assert sample(tree).spice.q_range.to_dict() == {"q_min": 11.0, "q_max": 13.0}  # nothing was written


def test_cook_and_export_say_where_the_q_range_is_set_and_why(tree):
    messages = q_range_messages(tree, None, 12.0)
    for path in ("cook", "export"):
        assert f"q_range.q_min is not set for {PROPOSAL}/S001" in messages[path]
        assert "proposal.spice.seed('q_range', q_min=10.1, q_max=14.1)" in messages[path]
    assert "e_spectrum.output_subdir_mode = 'q_range' (from default) names the folder after the q range" \
        in messages["export"]
    ordered = q_range_messages(tree, 13.0, 12.0)
    assert "q_range.q_min = 13.0 (from override); q_range.q_max = 12.0 (from override)" in ordered["cook"]


def test_no_caller_checks_the_q_range_itself(tree, monkeypatch):
    owner = rules.q_range_problems
    monkeypatch.setattr(rules, "q_range_problems",
                        lambda q_min, q_max: ["q range refused by the owner"] if owner(q_min, q_max) else [])
    for q_min, q_max in ((13.0, 12.0), (None, 12.0)):
        for path, message in q_range_messages(tree, q_min, q_max).items():
            assert "q range refused by the owner" in message, (path, q_min, q_max, message)


def roi_messages(repo, corners, in_record):
    """The messages of the same manual ROI given to spice (when ``in_record``: the record alone
    shows the problem), to cook as an override and to the validate_roi kernel (on the tree's
    canvas)."""
    messages = {}
    if in_record:
        with pytest.raises(spice.SpiceValidationError) as info:
            repo[PROPOSAL].spice.seed("roi", "S001", dict(zip(("x0", "y0", "x1", "y1"), corners)))
        messages["spice seed"] = str(info.value)
    with pytest.raises(BadInput) as info:
        sample(repo).cook("reconstruction", roi=dict(zip(("x0", "y0", "x1", "y1"), corners)))
    messages["cook"] = str(info.value)
    with pytest.raises(BadInput) as info:
        validate_roi(*corners, image_shape=CANVAS)
    messages["kernel"] = str(info.value)
    return messages


def test_a_reversed_roi_gives_the_owners_message_on_every_path(tree):
    expected = rules.roi_problems(30, 10, 20, 40)
    assert expected == rules.roi_problems(30, 10, 20, 40, image_shape=CANVAS) == \
        ["roi.x1 = 20 must be >= roi.x0 = 30 (end corners are inclusive)"]
    messages = roi_messages(tree, (30, 10, 20, 40), in_record=True)
    assert set(messages) == {"spice seed", "cook", "kernel"}
    for path, message in messages.items():
        assert expected[0] in message, path
    assert "roi.x0 = 30 (from override)" in messages["cook"]


def test_an_roi_outside_the_image_gives_the_owners_message_in_cook_and_kernel(tree):
    expected = rules.roi_problems(0, 70, 5, 75, image_shape=CANVAS)
    assert expected[0] == "roi.y0 = 70 is outside the image: rows run from 0 to 63"
    messages = roi_messages(tree, (0, 70, 5, 75), in_record=False)
    for path in ("cook", "kernel"):
        assert "; ".join(expected) in messages[path], path


def test_no_caller_checks_the_roi_itself(tree, monkeypatch):
    owner = rules.roi_problems
    monkeypatch.setattr(rules, "roi_problems",
                        lambda *corners, **shape: ["roi refused by the owner"] if owner(*corners, **shape) else [])
    for corners, in_record in (((30, 10, 20, 40), True), ((0, 70, 5, 75), False)):
        for path, message in roi_messages(tree, corners, in_record).items():
            assert "roi refused by the owner" in message, (path, corners, message)
