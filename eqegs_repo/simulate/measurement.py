"""A measurement played on a demo tree while it is watched (``eqegs demo --live``).

:func:`play` rewinds a few samples of a synthetic tree to a short integration and grows them
(:func:`eqegs_repo.simulate.synthetic.grow_sample`: more trains, counts scaling with them, the
folder written beside and renamed) a few times while :func:`eqegs_repo.watch.watch` follows the
tree in a thread: after each growth the samples are cooked again, each new result is a row of
their history and the stop rule projects the exposure still needed.
"""
import threading

from eqegs_repo.errors import BadInput
from eqegs_repo.simulate import synthetic
from eqegs_repo.watch import watch

TRAINS = (500, 1000, 2000)
"""Trains integrated at each step of the measurement played (the demo tree's own is 2000)."""
WAIT_S = 120.0
"""Longest wait (s) for the row of one growth before the measurement goes on."""


def play(repo, base_dir, *, samples=2, trains=TRAINS, interval=0.2, target_error=0.05, history_dir,
         on_update=None, account=synthetic.DEFAULT_ACCOUNT):
    """Grow the first ``samples`` samples of the first proposal of the synthetic tree at
    ``base_dir`` (``repo`` over it) through ``trains`` while watching them every ``interval`` s;
    each history row (written under ``history_dir``) is passed to ``on_update(history, sample,
    row)`` as by :func:`eqegs_repo.watch.watch`. Returns the history (pandas.DataFrame)."""
    proposal = repo[repo.keys()[0]]
    keys = [k for k in proposal.keys() if k != synthetic.BACKGROUND_SAMPLE_ID][:samples]
    if not keys:
        raise BadInput(f"proposal {proposal.key} of {base_dir} has no sample to grow")
    truths = {k: synthetic.load_truth(base_dir, account, proposal.key, k) for k in keys}
    arrived, condition, stop, seen = set(), threading.Condition(), threading.Event(), {}

    def updated(history, sample, row):
        seen["history"] = history
        with condition:
            arrived.add((row["sample"], row["n_trains"]))
            condition.notify_all()
        if on_update is not None:
            on_update(history, sample, row)

    watcher = threading.Thread(target=watch, args=(repo,), daemon=True, name="watch (demo --live)",
                               kwargs=dict(proposals=proposal.key, samples=keys, interval=interval, stop=stop,
                                           on_update=updated, target_error=target_error, history_dir=history_dir))
    watcher.start()
    try:
        for count in trains:
            for key in keys:
                truth = truths[key]
                base = synthetic.SyntheticParams.from_mapping(truth.record["params"])
                synthetic.grow_sample(proposal[key].path, base, truth.record["seed"], int(count))
            with condition:
                condition.wait_for(lambda count=count: all((k, count) in arrived for k in keys), timeout=WAIT_S)
    finally:
        stop.set()
        watcher.join()
    return seen.get("history")
