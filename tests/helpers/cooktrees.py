"""Synthetic trees with seeded spice for the cooking tests (helpers, not tests)."""
import os

from eqegs_repo import Repository
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"
BACKGROUND = synthetic.BACKGROUND_SAMPLE_ID


def image_params(**overrides):
    """A fast image-level run: the tiny canvas (64 x 48 px) with 1024 frames of +-10 mm/s."""
    values = {"n_frames": 1024, "v_max_mm_s": 10.0}
    values.update(overrides)
    return synthetic.preset_params("tiny", **values)


def write_runs(base, params, seeds, proposal=PROPOSAL, first=1):
    """Background ``S000_noise`` (unless present) and samples S<first>... with ``seeds``."""
    folder = f"{base}/{proposal}"
    if not os.path.exists(f"{folder}/{BACKGROUND}"):
        synthetic.write_sample(f"{folder}/{BACKGROUND}", params, seed=10_000, background=True)
    keys = []
    for index, seed in enumerate(seeds):
        key = f"S{first + index:03d}"
        synthetic.write_sample(f"{folder}/{key}", params, seed=int(seed))
        keys.append(key)
    return keys


def repository(base, cache=True):
    """Repository over ``base/{proposal}/{sample}`` with in-memory spice and a cache under base."""
    import hashlib

    store = hashlib.sha256(str(base).encode()).hexdigest()[:12]  # shared by every Repository of base
    return Repository(f"{base}/{{proposal}}/{{sample}}", spice_url=f"memory://spice-{store}",
                      cache_url=f"{base}/.cache" if cache else False)


def seed_spice(prop, params, q_range=(11.0, 13.0), background=True, **e_spectrum):
    """Records matching the simulation (eqegs_repo.simulate.demo.seed_spice), MC 150 by default."""
    e_spectrum.setdefault("n_mc", 150)
    demo.seed_spice(prop, params, q_range, BACKGROUND if background else None, **e_spectrum)


def truth(params):
    """Ground truth of a run written with ``params`` (no truth files needed)."""
    return synthetic.SampleTruth({"params": params.to_mapping(),
                                  "dynamics": params.dynamics().to_mapping()}, {})


def true_fit(ds, params):
    """(tau, f_q) that a perfect measurement of the q range gives (eqegs_repo.simulate.demo.truth_of_fit)."""
    return demo.truth_of_fit(ds, truth(params))


def seeded_tree(base, n_frames=256):
    """One sample and its background of :func:`image_params` (``n_frames``) under ``base``,
    a cached repository, spice seeded with a short Monte Carlo (20 copies, 10 wing points)."""
    params = image_params(n_frames=n_frames)
    write_runs(base, params, [1])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    return repo


def demo_tree(base, seed, spice_url, n_mc=40):
    """The demo's tiny tree (background + S001 of :data:`PROPOSAL`) under ``base`` with the
    demo's spice (``n_mc`` Monte-Carlo copies) in ``spice_url`` and a cache in ``base/cache``;
    returns the repository."""
    tree = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="tiny", seed=seed, samples_per_proposal=1)
    truth = synthetic.load_truth(base, tree.account, PROPOSAL, "S001")
    repo = Repository(tree.url(), spice_url=spice_url, cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=n_mc)
    return repo
