"""A reanalysis with nothing to do answers from the cache without a cluster; a cluster cooks only
the samples that need it."""
import pytest

from eqegs_repo import Sample, batch
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params, repository, seed_spice, write_runs

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("nothing_to_do")
    params = image_params(n_frames=256)
    write_runs(base, params, [1, 2])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    return repo


@pytest.fixture(scope="module")
def client():
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        yield client


class Submits:
    """Spy on ``client.submit``: the sample keys sent to the cluster."""

    def __init__(self, client):
        self.client, self.keys = client, []

    def submit(self, function, *args, **kwargs):
        self.keys.append(next(a.key for a in args if isinstance(a, Sample)))
        return self.client.submit(function, *args, **kwargs)


def no_cluster(*args, **kwargs):
    raise AssertionError("a cluster was started with nothing to do")


def test_nothing_to_do_starts_no_cluster_and_gives_the_table_of_a_real_run(repo, client, monkeypatch):
    first = batch.reanalyze(repo, client=client, progress=False)
    assert first.set_index("sample").status.to_dict() == {BACKGROUND: "background", "S001": "ok", "S002": "ok"}
    with monkeypatch.context() as forced:  # the same run through the cluster, every sample a task
        forced.setattr(batch, "nothing_to_do", lambda *args, **kwargs: False)
        spy = Submits(client)
        real = batch.reanalyze(repo, client=spy, progress=False)
    assert sorted(spy.keys) == [BACKGROUND, "S001", "S002"]
    monkeypatch.setattr(batch, "local_cluster", no_cluster)
    monkeypatch.setattr(distributed, "Client", no_cluster)
    answered = batch.reanalyze(repo, progress=False)
    assert answered.status.tolist() == ["background", "up-to-date", "up-to-date"]
    columns = [c for c in batch.COLUMNS if c != "duration_s"]
    assert answered[columns].equals(real[columns])
    assert (answered[columns].drop(columns="status").equals(first[columns].drop(columns="status")))


def test_only_the_samples_that_need_cooking_go_to_the_cluster(repo, client):
    batch.reanalyze(repo, client=client, progress=False)          # everything cached
    repo[PROPOSAL].spice.update("e_spectrum", "S002", n_mc=25)
    spy = Submits(client)
    table = batch.reanalyze(repo, client=spy, progress=False)
    assert spy.keys == ["S002"]
    assert table.set_index("sample").status.to_dict() == {BACKGROUND: "background", "S001": "up-to-date",
                                                          "S002": "ok"}
    assert not batch.nothing_to_do(repo[PROPOSAL]["S001"], export=True)  # exporting is work
