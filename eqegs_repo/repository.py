"""Repository -> Proposal -> Sample: navigation, listing, summaries and tab completion.

Listing reads folder names and checks for the marker file only; no array file is opened until
a sample's ``.raw`` data or a table with ``check=True`` asks for it. Listings are cached;
``refresh()`` re-reads them.
"""
import html

import fsspec
import pandas as pd

from eqegs_repo import naming
from eqegs_repo.cooking.cache import DatasetCache, default_cache_url
from eqegs_repo.errors import BadInput, BadSample, HandleNotFound, KeyNotFound
from eqegs_repo.io.layout import TreeLayout, read_marker
from eqegs_repo.io.raw import check_sample_files, open_raw
from eqegs_repo.urls import UrlPattern


def _ls(fs, path, what):
    """Names of the sub-folders of ``path``; a clear error when it cannot be read."""
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        raise BadInput(f"{what} folder {path} does not exist") from None
    except PermissionError as exc:
        raise BadInput(f"{what} folder {path} cannot be read ({exc.strerror or exc})") from None
    except OSError as exc:
        raise BadInput(f"{what} folder {path} cannot be read ({exc})") from None
    return [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"]


def _html_table(rows):
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


_STATUS_STYLES = {"broken": "background-color: #f8d0d0", "spice conflicted": "background-color: #fde3c0",
                  "stale": "background-color: #fff6c0", "cooked": "background-color: #d8f0d8",
                  "partly cooked": "background-color: #ecf8ec"}
"""Row colour of a sample's status in the HTML tables (see :func:`_sample_status`)."""


def _cell(value):
    """Text of a table cell: "" for None and NaN."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _sample_status(row):
    """One word for a row of ``Proposal.table()``: ``broken`` (a problem), ``spice conflicted``,
    ``stale`` (a cached step is out of date and the final one is not fresh), ``cooked`` (the
    final step is cached for the current inputs), ``partly cooked``, ``spice incomplete`` or
    ``not cooked``."""
    cooked, stale, spice = (_cell(row.get(name)) for name in ("cooked", "stale", "spice"))
    if _cell(row.get("problem")):
        return "broken"
    if spice == "conflicted":
        return "spice conflicted"
    if "e_spectrum_and_isf" in cooked.split(","):
        return "cooked"
    if stale:
        return "stale"
    if cooked:
        return "partly cooked"
    return "spice incomplete" if spice == "incomplete" else "not cooked"


class _Container:
    """Shared navigation of Repository (children: proposals) and Proposal (children: samples).

    Subclasses define ``_child_kind`` (word used in messages), ``_handle_prefix``,
    ``_list_keys()``, ``_make_child(key)`` and ``_open_spice()``.
    """

    _child_kind = "entry"
    _handle_prefix = "x"
    _cache_fields = ("_keys", "_handles", "_children", "_spice")

    def _reset_cache(self):
        self._keys = None
        self._handles = None
        self._children = {}
        self._spice = None

    @property
    def spice(self):
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

    def refresh(self):
        """Forget cached listings so the next access re-reads the folders, and re-list the
        spice records (other writers' new records become visible)."""
        for child in self._children.values():
            child.refresh()
        if self._spice is not None:
            self._spice.refresh()
        self._keys = None
        self._handles = None
        return self

    def keys(self):
        """Keys (folder names) of the children, in natural order."""
        if self._keys is None:
            self._keys = naming.natural_sorted(self._list_keys())
        return list(self._keys)

    def all(self):
        """Dict key -> handle of the children, in natural order (``S2`` before ``S10``)."""
        if self._handles is None:
            reserved = set(dir(type(self))) | set(vars(self))
            self._handles = naming.handles_for(self.keys(), self._handle_prefix, reserved)
        return dict(self._handles)

    def __len__(self):
        return len(self.keys())

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key):
        return key in self.keys()

    def __getitem__(self, key):
        naming.check_key(key, self._child_kind)
        if key not in self.keys():
            raise KeyNotFound(self._child_kind, key, self.keys())
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
        return sorted(set(super().__dir__()) | set(self.all().values()))

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
    ``/UserData/{account}/EQEGS/{proposal}/{sample}``; other ``{fields}`` are filled from
    ``fields`` (``Repository(url, account="u0000000")``). ``spice_url``: where spice records
    live (default: ``.spice/`` folders in the tree; ``"memory://"`` keeps them in memory).
    ``storage_options``: passed to fsspec. ``layout``: file names inside the tree.
    ``cache_url``: where cooked results are cached (see :mod:`eqegs_repo.cooking.cache`): None for the
    user cache folder (``$EQEGS_CACHE_DIR`` or ``~/.cache/eqegs_repo``), a path or fsspec URL,
    or False for no cache.
    """

    _child_kind = "proposal"
    _handle_prefix = "p"
    _cache_fields = _Container._cache_fields + ("_cache",)

    def __init__(self, url, *, spice_url=None, storage_options=None, layout=None, cache_url=None,
                 **fields):
        self.pattern = UrlPattern.parse(url, fields)
        self.cache_url = default_cache_url() if cache_url is None else cache_url
        self.url = url
        self.fields = fields
        self.spice_url = spice_url
        self.storage_options = dict(storage_options or {})
        self.layout = layout or TreeLayout()
        self.fs = fsspec.filesystem(self.pattern.protocol, **self.storage_options)
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

    def _list_keys(self):
        keys = []
        for name in _ls(self.fs, self.root, "repository root"):
            key = self.pattern.proposal_key(name)
            if key is None or name.startswith(".") or name in self.layout.never_samples():
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

    def proposal_keys(self):
        """Proposal keys in natural order (same as ``list(repo.all())``)."""
        return self.keys()

    @property
    def cache(self):
        """The :class:`~eqegs_repo.cooking.cache.DatasetCache` of cooked results, or None (no cache)."""
        if self.cache_url is False:
            return None
        if self.__dict__.get("_cache") is None:
            self.__dict__["_cache"] = DatasetCache(self.cache_url)
        return self.__dict__["_cache"]

    def _open_spice(self):
        from eqegs_repo.params.binding import repository_spice

        return repository_spice(self)

    def reanalyze(self, **kwargs):
        """Cook many samples on Dask and return one table: :func:`eqegs_repo.batch.reanalyze`
        (selection by ``proposals``, ``samples``, ``where``, ``select``; ``steps``,
        ``overrides``, ``export``, ``client``, ``workers``, ``progress``)."""
        from eqegs_repo.batch import reanalyze

        return reanalyze(self, **kwargs)

    def table(self):
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
        rows = [[_cell(v) for v in row] for row in table.itertuples(index=False)]
        styles = [_STATUS_STYLES["broken"] if problem else "" for problem in table["problem"]]
        try:
            spice = f"{len(self.spice)} repository spice records"
            conflicts = self.spice.conflicts()
            spice += f", {len(conflicts)} conflicted" if conflicts else ""
        except (SpiceError, BadInput, OSError) as exc:  # the listing shows even so
            spice = f"repository spice unreadable: {exc}"
        return (f"<p>Repository <code>{html.escape(self.url)}</code>: {len(table)} proposals; "
                f"{html.escape(spice)}</p>" + html_table(list(table.columns), rows, row_styles=styles))


def _sample_keys(repo, proposal, first_only=False):
    """Sample keys of a proposal: sub-folders matching the pattern that hold the marker."""
    parent = repo.pattern.samples_parent(proposal)
    names = naming.natural_sorted(_ls(repo.fs, parent, f"proposal {proposal!r}"))
    keys = []
    for name in names:
        key = repo.pattern.sample_key(name)
        if key is None or name.startswith(".") or name in repo.layout.never_samples():
            continue
        if repo.fs.exists(repo.layout.marker_path(f"{parent}/{name}")):
            keys.append(key)
            if first_only:
                break
    return keys


class Proposal(_Container):
    """One proposal folder; its children are the samples (folders holding the marker)."""

    _child_kind = "sample"
    _handle_prefix = "s"

    def __init__(self, repository, key):
        self.repository = repository
        self.key = key
        self.path = repository.pattern.proposal_path(key)
        self._reset_cache()

    @property
    def handle(self):
        return self.repository.all().get(self.key, self.key)

    def _list_keys(self):
        return _sample_keys(self.repository, self.key)

    def _make_child(self, key):
        return Sample(self, key)

    def sample_keys(self):
        """Sample keys in natural order (same as ``list(proposal.all())``)."""
        return self.keys()

    def _open_spice(self):
        from eqegs_repo.params.binding import proposal_spice

        return proposal_spice(self)

    def table(self, check=True):
        """pandas.DataFrame with one row per sample.

        Columns: key, handle, frames, sensors, sensor_shape, dtype, trains, exposure_s, one
        column per step listing the results on disk (``main`` for the step folder itself,
        sub-folder names otherwise), ``spice`` (``complete``, ``incomplete`` when a required
        parameter is missing, ``conflicted``), ``cooked`` (steps cached for the current raw files
        and spice), ``stale`` (steps cached only for older inputs) and ``problem`` (empty when
        the sample is fine).
        ``check``: also read the raw files' headers to find truncated or inconsistent files.
        """
        rows = [self[key]._summary(check) for key in self.keys()]
        return pd.DataFrame(rows, columns=list(Sample._summary_columns()))

    def __repr__(self):
        return f"<Proposal {self.key} ({self.path}): {self._preview()}>"

    def _repr_html_(self):
        from spice.display import html_table

        table = self.table()
        status = [_sample_status(row) for row in table.to_dict("records")]
        table.insert(2, "status", status)
        rows = [[_cell(v) for v in row] for row in table.itertuples(index=False)]
        counts = pd.Series(status, dtype=object).value_counts()
        summary = ", ".join(f"{n} {word}" for word, n in counts.items())
        return (f"<p>Proposal <code>{html.escape(self.key)}</code> at <code>{html.escape(self.path)}</code>: "
                f"{len(table)} samples{': ' + html.escape(summary) if summary else ''}</p>"
                + html_table(list(table.columns), rows, row_styles=[_STATUS_STYLES.get(s, "") for s in status]))


class Sample:
    """One sample folder: marker, lazy raw data, spice view, results."""

    def __init__(self, proposal, key):
        self.proposal = proposal
        self.repository = proposal.repository
        self.key = key
        self.path = self.repository.pattern.sample_path(proposal.key, key)
        self._marker = None
        self._raw = None

    @property
    def handle(self):
        return self.proposal.all().get(self.key, self.key)

    @property
    def fs(self):
        return self.repository.fs

    @property
    def layout(self):
        return self.repository.layout

    def refresh(self):
        """Forget the cached marker and raw dataset."""
        self._marker = None
        self._raw = None
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_raw"] = None
        return state

    @property
    def marker(self):
        """The validated content of ``train_integrated.json`` (dict)."""
        if self._marker is None:
            self._marker = read_marker(self.fs, self.layout.marker_path(self.path))
        return self._marker

    def info(self):
        """The marker's content plus the raw files' sizes in bytes; reads no array."""
        out = {"proposal": self.proposal.key, "sample": self.key, "path": self.path}
        out.update(self.marker)
        raw_dir = f"{self.path}/{self.layout.raw_dir}"
        try:
            entries = self.fs.ls(raw_dir, detail=True)
        except (FileNotFoundError, PermissionError):
            entries = []
        out["files"] = {
            e["name"].rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in sorted(entries, key=lambda e: naming.natural_key(e["name"]))
            if e.get("type") == "file"
        }
        out["raw_bytes"] = sum(out["files"].values())
        return out

    @property
    def raw(self):
        """Lazy ``xarray.Dataset``: ``counts(sensor, frame, row, col)``, ``velocity(frame)``.

        Only the headers are read; values are read when asked for, e.g.
        ``s.raw.counts[:, 100:200].values`` reads frames 100..199 only.
        """
        if self._raw is None:
            self._raw = self.open_raw()
        return self._raw

    def open_raw(self, chunks=None):
        """Like :attr:`raw`; ``chunks`` = frames per chunk gives Dask-backed variables."""
        return open_raw(self.fs, self.path, self.marker, self.layout, chunks=chunks)

    @property
    def spice(self):
        """Resolved parameters: defaults < repository view at the proposal < proposal view here."""
        from eqegs_repo.params.binding import sample_spice

        return sample_spice(self)

    def cook(self, step="e_spectrum_and_isf", *, use_cache=True, **overrides):
        """Run the chain up to ``step`` and return its ``xarray.Dataset`` (cached).

        ``step``: ``"reconstruction"``, ``"q_integration"`` or ``"e_spectrum_and_isf"``.
        ``overrides``: one-off parameter values that write no spice, as ``field=value`` (a field
        name of one spice type, e.g. ``q_min=10``) or ``type={field: value}``; they appear in
        ``.attrs["overrides"]``. ``use_cache=False`` computes without reading or writing the
        cache. See docs/reconstruction.md, docs/q-integration.md, docs/e-spectrum-and-isf.md.
        """
        from eqegs_repo.cooking.cook import cook

        return cook(self, step, use_cache=use_cache, **overrides)

    @property
    def cooked(self):
        """The final result: ``cook("e_spectrum_and_isf")`` with the sample's spice."""
        return self.cook("e_spectrum_and_isf")

    def cache_status(self, **overrides):
        """``{step: "fresh" | "stale" | ""}`` of the cached results for the current spice and
        ``overrides`` (see :mod:`eqegs_repo.cooking.cook`)."""
        from eqegs_repo.cooking.cook import cache_status

        return cache_status(self, **overrides)

    def export(self, step, subdir=None, overwrite=False, skip_existing=False, *, use_cache=True,
               **overrides):
        """Write ``cook(step, **overrides)`` as the app's step folder and download zip
        (:func:`eqegs_repo.cooking.export.export`, docs/outputs.md). ``subdir``: sub-folder name instead
        of the parameters' one; an existing result raises unless ``overwrite=True`` (replace)
        or ``skip_existing=True`` (leave it). Returns :class:`~eqegs_repo.cooking.export.Exported`."""
        from eqegs_repo.cooking.export import export

        return export(self, step, subdir, overwrite, skip_existing, use_cache=use_cache, **overrides)

    @property
    def results(self):
        """Step folders on disk (the app's or ours): step -> {``"main"`` or sub-folder ->
        Dataset read on first access, ``.attrs["parameters"]`` from dl/info/info.json}
        (:class:`eqegs_repo.io.app_results.Results`, docs/outputs.md)."""
        from eqegs_repo.io.app_results import Results

        return Results(self)

    def step_results(self):
        """Dict step -> list of result folders on disk (``"main"`` and sub-folder names), by the
        rules of :func:`eqegs_repo.io.app_results.result_folders`."""
        from eqegs_repo.io.app_results import result_folders

        present = set(_ls(self.fs, self.path, "sample"))
        return {step: list(result_folders(self.fs, self.path, step)) if step in present else []
                for step in self.layout.steps}

    @staticmethod
    def _summary_columns():
        return ("key", "handle", "frames", "sensors", "sensor_shape", "dtype", "trains",
                "exposure_s", "reconstruction", "q_integration", "e_spectrum_and_isf", "spice",
                "cooked", "stale", "problem")

    def _summary(self, check):
        row = dict.fromkeys(self._summary_columns(), None)
        row.update(key=self.key, handle=self.handle, problem="")
        try:
            m = self.marker
            row.update(
                frames=m["n_frames"], sensors=m["n_sensors"],
                sensor_shape="x".join(map(str, m["sensor_shape"])),
                dtype=m.get("dtype"), trains=m.get("trains_integrated"),
                exposure_s=m.get("exposure_s"),
            )
            if check:
                stack, _ = check_sample_files(self.fs, self.path, m, self.layout)
                row["dtype"] = str(stack.dtype)
            for step, found in self.step_results().items():
                row[step] = ",".join(found)
            row["spice"] = self.spice.status
            status = self.cache_status()
            row["cooked"] = ",".join(step for step, state in status.items() if state == "fresh")
            row["stale"] = ",".join(step for step, state in status.items() if state == "stale")
        except BadInput as exc:
            row["problem"] = str(exc)
        return row

    def __repr__(self):
        where = f"{self.proposal.key}/{self.key}"
        try:
            m = self.marker
        except BadSample as exc:
            return f"<Sample {where}: broken: {exc}>"
        rows, cols = m["sensor_shape"]
        return (f"<Sample {where}: {m['n_frames']} frames, {m['n_sensors']} sensors of "
                f"{rows} x {cols}{', ' + m['dtype'] if 'dtype' in m else ''}>")

    def _repr_html_(self):
        from spice import SpiceError
        from spice.display import html_table

        title = f"Sample <code>{html.escape(self.proposal.key)}/{html.escape(self.key)}</code>"
        row = self._summary(check=True)
        status = _sample_status(row)
        head = (f"<p>{title}: <span style='{_STATUS_STYLES.get(status, '')}'>{html.escape(status)}</span>"
                + (f": {html.escape(row['problem'])}" if row["problem"] else "") + "</p>")
        try:
            info = self.info()
        except BadSample:
            return head + _html_table([("path", self.path)])
        files = info.pop("files")
        info["files"] = ", ".join(f"{name} ({size / 1e6:.3g} MB)" for name, size in files.items())
        try:
            cache = self.cache_status()
        except BadInput as exc:
            cache = dict.fromkeys(self.layout.steps, f"unknown ({exc})")
        results = [(step, ", ".join(found) or "-", cache.get(step) or "-")
                   for step, found in self.step_results().items()]
        try:
            spice = self.spice._repr_html_()
        except (SpiceError, BadInput, OSError) as exc:  # the summary shows even so
            spice = f"<p>cannot resolve spice: {html.escape(str(exc))}</p>"
        return (head + _html_table(info.items())
                + "<p>Results</p>" + html_table(("step", "on disk", "cached"), results)
                + f"<details><summary>spice: {html.escape(str(row['spice']))}</summary>{spice}</details>")
