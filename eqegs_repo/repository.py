"""Repository -> Proposal -> Sample: navigation, listing, summaries and tab completion.

Listing reads folder names and checks for the marker file only; no array file is opened until
a sample's ``.raw`` data or a table with ``check=True`` asks for it. Listings are cached;
``refresh()`` re-reads them.
"""
import html
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from eqegs_repo import naming, snapshot
from eqegs_repo.cooking.cache import DatasetCache, default_cache_url
from eqegs_repo.display import STATUS_STYLES, SampleTable, cell_text, drop_empty, records, sample_status, samples_html
from eqegs_repo.errors import BadInput, HandleNotFound, KeyNotFound
from eqegs_repo.io.config import read_config
from eqegs_repo.io.layout import TreeLayout, find_sample_folders, list_folders, marker_present
from eqegs_repo.sample import Sample
from eqegs_repo.scheduler import SCHEDULER_TIMEOUT
from eqegs_repo.step_table import StepName
from eqegs_repo.urls import UrlPattern, open_filesystem


class _Container(metaclass=naming.ShowsPublic):
    """Shared navigation of Repository (children: proposals) and Proposal (children: samples).

    Subclasses define ``_child_kind`` (word used in messages), ``_handle_prefix``,
    ``_list_keys()``, ``_make_child(key)`` and ``_open_spice()``.
    """

    _child_kind = "entry"
    _handle_prefix = "x"
    _cache_fields = ("_keys", "_handles", "_children", "_spice")
    _public = ("all", "keys", "refresh", "spice", "table")
    """What ``dir()`` (and so tab completion) shows besides the children's handles: the calls
    of a user. Every other attribute stays reachable by name."""

    def _reset_cache(self):
        self._keys = None
        self._handles = None
        self._children = {}
        self._spice = None

    @property
    def spice(self) -> Any:
        """The spice records of this level: a repository's are anchored at proposal keys, a
        proposal's at sample keys (see docs/spice.md)."""
        if self._spice is None:
            self._spice = self._open_spice()
        return self._spice

    def _preview(self):
        """``"N <children>: handle handle ..."`` (the first 8 handles), for reprs."""
        keys = self.keys()
        shown = " ".join(self.all()[k] for k in keys[:8]) + (" ..." if len(keys) > 8 else "")
        return f"{len(keys)} {self._child_kind}s: {shown}"

    def refresh(self) -> "_Container":
        """Forget cached listings so the next access re-reads the folders, and re-list the
        spice records (other writers' new records become visible)."""
        for child in self._children.values():
            child.refresh()
        if self._spice is not None:
            self._spice.refresh()
        self._keys = None
        self._handles = None
        return self

    def keys(self) -> list[str]:
        """Keys (folder names) of the children, in natural order."""
        return list(self._known_keys())

    def _known_keys(self):
        """The children's keys as a dict (key -> None) in natural order: looked up in constant
        time, never copied (a listing of 5,000 samples looks each one up)."""
        if self._keys is None:
            self._keys = dict.fromkeys(naming.natural_sorted(self._list_keys()))
        return self._keys

    def all(self) -> dict[str, str]:
        """Dict key -> handle of the children, in natural order (``S2`` before ``S10``)."""
        return dict(self._known_handles())

    def _known_handles(self):
        if self._handles is None:
            reserved = {name for cls in type(self).__mro__ for name in vars(cls)} | set(vars(self))
            self._handles = naming.handles_for(self.keys(), self._handle_prefix, reserved)
        return self._handles

    def _handle_of(self, key):
        """The handle of the child ``key`` (the key itself when it has none)."""
        return self._known_handles().get(key, key)

    def __len__(self):
        return len(self.keys())

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key):
        return isinstance(key, str) and naming.find_key(key, self._known_keys()) is not None

    def __getitem__(self, key):
        """The child of folder ``key``, compared in NFC (the folder's own name is its key)."""
        naming.check_key(key, self._child_kind)
        found = naming.find_key(key, self._known_keys())
        if found is None:
            raise KeyNotFound(self._child_kind, key, self.keys())
        key = found
        if key not in self._children:
            self._children[key] = self._make_child(key)
        return self._children[key]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        by_handle = {h: k for k, h in self.all().items()}
        if name not in by_handle:
            raise HandleNotFound(f"{self._child_kind} handle", name, list(by_handle))
        return self[by_handle[name]]

    def __dir__(self):
        return sorted(set(self._public) | set(self.all().values()))

    def _ipython_key_completions_(self):
        return self.keys()

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in self._cache_fields:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset_cache()


class Repository(_Container):
    """The E-QEGS tree under a URL pattern.

    ``url``: a path or any fsspec URL containing ``{proposal}`` and ``{sample}``, e.g.
    ``/UserData/{account}/EQEGS/{proposal}/{sample}``, or the EQEGS folder itself
    (``/UserData/u0000000/EQEGS``, meaning ``{proposal}/{sample}`` under it, as for the ``eqegs``
    commands: :func:`eqegs_repo.urls.with_sample_segments`); other ``{fields}`` are filled from
    ``fields`` (``Repository(url, account="u0000000")``). ``spice_url``: where spice records
    live (default: ``.spice/`` folders in the tree; ``"memory://"`` keeps them in memory).
    ``storage_options``: passed to fsspec. ``layout``: file names inside the tree.
    ``cache_url``: where cooked results are cached (see :mod:`eqegs_repo.cooking.cache`): a path
    or fsspec URL, or False for no cache.
    ``spice_url`` and ``cache_url`` left at None are taken from the tree's ``eqegs.yaml`` (next
    to the proposal folders; ``.config``, docs/configuration.md), else the built-in defaults:
    the ``.spice/`` folders, and the user cache folder (``$EQEGS_CACHE_DIR`` or
    ``~/.cache/eqegs_repo``). ``trusted_calibration_dirs``: folders whose calibration ``.py``
    files may run (besides ``$EQEGS_TRUSTED_CALIBRATION_DIRS``; see
    :mod:`eqegs_repo.cooking.calibration`); never read from ``eqegs.yaml``, which lives in the
    data tree.
    """

    _child_kind = "proposal"
    _handle_prefix = "p"
    _cache_fields = _Container._cache_fields + ("_cache",)
    _public = _Container._public + ("cache", "reanalyze", "root", "url", "watch")

    def __init__(self, url: str, *, spice_url: str | None = None,
                 storage_options: Mapping[str, Any] | None = None, layout: TreeLayout | None = None,
                 cache_url: str | bool | None = None, trusted_calibration_dirs: Iterable[str] | None = None,
                 **fields: str) -> None:
        self.pattern = UrlPattern.parse(url, fields)
        self.trusted_calibration_dirs = [str(d) for d in (trusted_calibration_dirs or ())]
        self.url = self.pattern.url
        self.fields = fields
        self.storage_options = dict(storage_options or {})
        self.layout = layout or TreeLayout()
        self.fs, _ = open_filesystem(self.url, "repository URL", **self.storage_options)
        self.root = self.pattern.root
        self._reset_cache()
        try:
            kind = self.fs.info(self.root).get("type")
        except FileNotFoundError:
            raise BadInput(f"repository root {self.root} (from URL {url!r}) does not exist") from None
        except OSError as exc:
            raise BadInput(f"repository root {self.root} cannot be read ({exc})") from None
        if kind != "directory":
            raise BadInput(f"repository root {self.root} (from URL {url!r}) is not a folder")
        self.config = read_config(self.fs, self.root, self.pattern.protocol)
        self.cache_url = self.config.get("cache_url", default_cache_url()) if cache_url is None else cache_url
        self.spice_url = self.config.get("spice_url") if spice_url is None else spice_url

    def _list_keys(self):
        keys = []
        for name in list_folders(self.fs, self.root, "repository root"):
            key = self.pattern.proposal_key(name)
            if key is None or name.startswith(".") or name in self.layout.never_samples():
                continue
            if _refused(key, f"{self.root}/{name}", "proposal"):
                continue
            if self._has_sample(key):
                keys.append(key)
        return keys

    def _has_sample(self, proposal):
        """True when the proposal holds a sample, or when it cannot be read (shown, not hidden)."""
        try:
            return bool(_sample_keys(self, proposal, first_only=True))
        except BadInput:
            return True

    def _make_child(self, key):
        return Proposal(self, key)

    def explain_empty(self) -> str | None:
        """Why no proposal is listed when the URL names the wrong level: text naming what the
        root holds and what was expected (e.g. the URL names a proposal folder, or the folder
        above the tree). None when proposals are listed, or when no sample folder is found
        within a few levels (a tree not started yet)."""
        if self.keys():
            return None
        expected = 2 + len(self.pattern.middle)
        marker = self.layout.marker
        depth, found = find_sample_folders(self.fs, self.root, self.layout, max_depth=expected + 3)
        shape = "/".join([self.pattern.proposal_segment, *self.pattern.middle, self.pattern.sample_segment])
        head = f"no proposals in {self.root}: expected {shape}/{marker} {expected} levels below it"
        if depth is None:
            return None
        if depth == expected:
            return (f"{head}; sample folders are there (e.g. {found[0]}) but their names do not match "
                    f"the URL's segments {shape}")
        example = found[0]
        if depth < expected:
            suggest = self.root.rstrip("/").rsplit("/", expected - depth)[0] or "/"
            what = "is a sample folder" if depth == 0 else f"holds sample folders {depth} level(s) down"
            return (f"{head}, but it {what} (e.g. {example}); the folder holding the proposals is "
                    f"probably {suggest}")
        suggest = example.rsplit("/", expected)[0]
        return (f"{head}, but sample folders are {depth} levels below (e.g. {example}); the folder "
                f"holding the proposals is probably {suggest}")

    @property
    def cache(self) -> DatasetCache | None:
        """The :class:`~eqegs_repo.cooking.cache.DatasetCache` of cooked results, or None (no cache)."""
        if self.cache_url is False:
            return None
        if self.__dict__.get("_cache") is None:
            self.__dict__["_cache"] = DatasetCache(self.cache_url)
        return self.__dict__["_cache"]

    def _open_spice(self):
        from eqegs_repo.params.binding import repository_spice

        return repository_spice(self)

    def reanalyze(self, *, proposals: str | Iterable[str] | None = None,
                  samples: str | Iterable[str] | None = None, where: Mapping[str, Any] | None = None,
                  select: Callable[[Sample], bool] | None = None,
                  steps: StepName | Iterable[StepName] = ("e_spectrum_and_isf",),
                  overrides: Mapping[str, Any] | None = None, export: bool = False, client: Any = None,
                  workers: int | None = None, progress: bool | None = None, dashboard: bool | str = False,
                  timeout: float | None = None, scheduler: str | None = None,
                  scheduler_timeout: float = SCHEDULER_TIMEOUT, nexus: str | None = None) -> pd.DataFrame:
        """Cook many samples on Dask and return one table, one row per sample
        (:func:`eqegs_repo.batch.reanalyze`, docs/reanalysis.md).

        ``proposals``/``samples``: keys or shell-style patterns (``"S00[1-3]"``) or lists of
        them; ``where``: ``{"TYPE.FIELD": value}`` compared with each sample's resolved spice;
        ``select``: a callable ``sample -> bool``. ``steps``: the chain runs up to the last one.
        ``overrides``: one-off parameter values for every sample (no spice written).
        ``export``: also write the app's step folders. ``client``: a
        ``dask.distributed.Client``; without one a local cluster of ``workers`` processes is
        started (with a dashboard when ``dashboard`` is True or an address), and only when a
        sample needs cooking: samples whose results are cached and fresh are answered from the
        cache. ``scheduler``: instead of ``client``, a running scheduler's address
        (``tcp://host:8786``), which must answer within ``scheduler_timeout`` seconds
        (:func:`eqegs_repo.scheduler.connect`). ``progress``: a bar (None: on a terminal or in
        Jupyter). ``timeout``: seconds per sample. ``nexus``: also write the table as a NeXus/HDF5
        file at this path (docs/outputs.md#nexus-files). Columns: :data:`eqegs_repo.batch.COLUMNS`."""
        from eqegs_repo.batch import reanalyze

        return reanalyze(self, proposals=proposals, samples=samples, where=where, select=select, steps=steps,
                         overrides=overrides, export=export, client=client, workers=workers, progress=progress,
                         dashboard=dashboard, timeout=timeout, scheduler=scheduler,
                         scheduler_timeout=scheduler_timeout, nexus=nexus)

    def watch(self, *, proposals: str | Iterable[str] | None = None, samples: str | Iterable[str] | None = None,
              steps: StepName | Iterable[StepName] = ("e_spectrum_and_isf",), overrides: Mapping[str, Any] | None = None,
              export: bool = False, interval: float = 5.0, existing: bool = False, retries: int = 2,
              stop: Any = None, on_result: Callable[[dict], Any] | None = None, max_polls: int | None = None,
              timeout: float | None = None, on_update: Callable[..., Any] | None = None, target_error: float = 0.05,
              history_dir: str | None = None, changes: str = "auto") -> list[dict]:
        """Cook samples as they arrive, once their files have settled, and again when they change
        (:func:`eqegs_repo.watch.watch`).

        Every ``interval`` seconds the listing is re-read; a sample matching ``proposals``/
        ``samples`` whose files kept their sizes and times over one interval is cooked up to the
        last of ``steps`` (with ``overrides``; ``export`` writes the step folders) and its row
        (the columns of :meth:`reanalyze`) passed to ``on_result``. A failing cook is tried again
        when its files change, and up to ``retries`` times with the same files. Samples present
        at the start are cooked unless the cache says they are cooked already; ``existing``: give
        those their row too. Stops on Ctrl-C, when ``stop`` (a ``threading.Event``) is set or
        after ``max_polls`` polls. ``timeout``: seconds per sample. Each new result appends a row to
        the sample's history (in ``history_dir`` or the cache) with the exposure needed for
        ``target_error`` and calls ``on_update(history, sample, row)``. ``changes``: ``"auto"``
        ends a wait early on a file event where the filesystem gives them (else polls),
        ``"poll"`` only polls, ``"events"`` insists on events. Returns the rows."""
        from eqegs_repo.watch import watch

        return watch(self, proposals=proposals, samples=samples, steps=steps, overrides=overrides, export=export,
                     interval=interval, existing=existing, retries=retries, stop=stop, on_result=on_result,
                     max_polls=max_polls, timeout=timeout, on_update=on_update, target_error=target_error,
                     history_dir=history_dir, changes=changes)

    def table(self) -> pd.DataFrame:
        """pandas.DataFrame with one row per proposal: key, handle, samples, problem."""
        rows = []
        for key, handle in self.all().items():
            try:
                n, problem = len(self[key].keys()), ""
            except BadInput as exc:
                n, problem = None, str(exc)
            rows.append({"key": key, "handle": handle, "samples": n, "problem": problem})
        return pd.DataFrame(rows, columns=["key", "handle", "samples", "problem"])

    def __repr__(self):
        return f"<Repository {self.url} ({self.root}): {self._preview()}>"

    def _repr_html_(self):
        from spice import SpiceError
        from spice.display import html_table

        table = self.table()
        styles = [STATUS_STYLES["broken"] if problem else "" for problem in table["problem"]]
        table = drop_empty(table)
        rows = [[cell_text(v) for v in row] for row in table.itertuples(index=False)]
        try:
            spice = f"{len(self.spice)} repository spice records"
            conflicts = self.spice.conflicts()
            spice += f", {len(conflicts)} conflicted" if conflicts else ""
        except (SpiceError, BadInput, OSError) as exc:  # the listing shows even so
            spice = f"repository spice unreadable: {exc}"
        return (f"<p>Repository <code>{html.escape(self.url)}</code>: {len(table)} proposals; "
                f"{html.escape(spice)}</p>" + html_table(list(table.columns), rows, row_styles=styles))


def _refused(key, folder, what):
    """True (with a warning naming the folder) for a key that access would refuse, e.g. a
    folder ``S..1``: it is left out of the listing instead of breaking it."""
    problem = naming.key_problem(key)
    if problem:
        warnings.warn(f"{naming.shown_name(folder)} is not listed: its {what} key "
                      f"{naming.shown_name(key)!r} is not usable ({problem})",
                      stacklevel=4)
    return bool(problem)


def _sample_keys(repo, proposal, first_only=False):
    """Sample keys of a proposal: sub-folders matching the pattern that hold the marker, or the
    app's copy of it in their reconstruction folder (or cannot be read: listed, and reported as
    broken)."""
    parent = repo.pattern.samples_parent(proposal)
    names = naming.natural_sorted(list_folders(repo.fs, parent, f"proposal {proposal!r}"))
    keys, never = [], repo.layout.never_samples()
    for name in names:
        key = repo.pattern.sample_key(name)
        if key is None or name.startswith(".") or name in never:
            continue
        folder = f"{parent}/{name}"
        if not (marker_present(repo.fs, repo.layout.marker_path(folder))
                or repo.fs.exists(repo.layout.marker_copy_path(folder))):
            continue
        if not _refused(key, f"{parent}/{name}", "sample"):
            keys.append(key)
            if first_only:
                break
    return keys


class Proposal(_Container):
    """One proposal folder; its children are the samples (folders holding the marker)."""

    _child_kind = "sample"
    _handle_prefix = "s"
    _public = _Container._public + ("handle", "key", "path", "repository")

    def __init__(self, repository: Repository, key: str) -> None:
        self.repository = repository
        self.key = key
        self.path = repository.pattern.proposal_path(key)
        self._reset_cache()

    @property
    def handle(self) -> str:
        """The Python name of this proposal in ``repo`` (``repo.<handle>``)."""
        return self.repository._handle_of(self.key)

    def _list_keys(self):
        return _sample_keys(self.repository, self.key)

    def _make_child(self, key):
        return Sample(self, key)

    def sample_keys(self) -> list[str]:
        """Sample keys in natural order (same as ``list(proposal.all())``)."""
        return self.keys()

    def _open_spice(self):
        from eqegs_repo.params.binding import proposal_spice

        return proposal_spice(self)

    def table(self, check: bool = True) -> SampleTable:
        """pandas.DataFrame with one row per sample; it prints (and shows in Jupyter) compactly:
        empty columns dropped, the steps as ``RQE`` letters (:class:`~eqegs_repo.display.SampleTable`).

        Columns: key, handle, frames, sensors, sensor_shape, dtype, trains, exposure_s, one
        column per step listing the results on disk (``main`` for the step folder itself,
        sub-folder names otherwise), ``spice`` (``complete``, ``incomplete`` when a required
        parameter is missing, ``conflicted``), ``cooked`` (steps cached for the current raw files
        and spice), ``stale`` (steps cached only for older inputs) and ``problem`` (empty when
        the sample is fine), then the sample's ``conditions``: ``temperature_K``, ``pressure_Pa``
        and one ``conditions.<name>`` column per free field (docs/spice.md#sample-conditions).
        ``check``: also read the raw files' headers to find truncated or inconsistent files.
        """
        from eqegs_repo.listing_cache import table_rows
        from eqegs_repo.params.conditions import free_columns

        with snapshot.scope():
            rows = table_rows(self, self.keys(), check, lambda key: self[key]._summary(check))
        return SampleTable(pd.DataFrame(rows, columns=list(Sample._summary_columns()) + free_columns(rows)))

    def __repr__(self):
        return f"<Proposal {self.key} ({self.path}): {self._preview()}>"

    def _repr_html_(self):
        table = self.table()
        status = [sample_status(row) for row in records(table)]
        counts = pd.Series(status, dtype=object).value_counts()
        summary = ", ".join(f"{n} {word}" for word, n in counts.items())
        return (f"<p>Proposal <code>{html.escape(self.key)}</code> at <code>{html.escape(self.path)}</code>: "
                f"{len(table)} samples{': ' + html.escape(summary) if summary else ''}</p>" + samples_html(table))
