"""One sample: its marker and raw data, its spice, and its results, cooked or on disk.

Nothing is read when a :class:`Sample` is made; ``.marker``, ``.raw``, ``.spice`` and ``.cooked``
each read what they need on first use.
"""
import html
from typing import TYPE_CHECKING, Any

from eqegs_repo import naming, step_table
from eqegs_repo.display import STATUS_STYLES, SampleInfo, html_rows, sample_status
from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.io.layout import list_folders, read_marker
from eqegs_repo.io.run import open_run, run_file_sizes
from eqegs_repo.params.conditions import CONDITION_COLUMNS, condition_columns
from eqegs_repo.step_table import StepName
from spice import SpiceError

if TYPE_CHECKING:  # annotations only
    import xarray

    from eqegs_repo.cooking.export import Exported
    from eqegs_repo.io.app_format.reading import Results
    from eqegs_repo.io.poni_file import Poni
    from spice import ResolvedView


class Sample(metaclass=naming.ShowsPublic):
    """One sample folder: marker, lazy raw data, spice view, results. Made by its
    :class:`~eqegs_repo.repository.Proposal` (``proposal[key]``), never by hand."""

    _public = ("cache_status", "cook", "cooked", "export", "export_nexus", "export_poni", "handle", "info", "key",
               "marker", "open_raw", "path", "proposal", "raw", "refresh", "repository", "results", "spice", "step_results")
    """What ``dir()`` (and so tab completion) shows: the calls of a user. Every other attribute
    (``fs``, ``layout``) stays reachable by name."""

    def __init__(self, proposal, key: str) -> None:
        self.proposal = proposal
        self.repository = proposal.repository
        self.key = key
        self.path = self.repository.pattern.sample_path(proposal.key, key)
        self._marker = None
        self._raw = None

    @property
    def handle(self) -> str:
        """The Python name of this sample in its proposal (``proposal.<handle>``)."""
        return self.proposal._handle_of(self.key)

    @property
    def fs(self):
        return self.repository.fs

    @property
    def layout(self):
        return self.repository.layout

    def __dir__(self):
        return sorted(self._public)

    def refresh(self) -> "Sample":
        """Forget the cached marker and raw dataset."""
        self._marker = None
        self._raw = None
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_raw"] = None
        return state

    @property
    def marker(self) -> dict:
        """The validated content of ``train_integrated.json`` (dict): the sample's, or the app's
        copy in ``reconstruction/dl/info/`` when the sample's is gone (:attr:`marker_path`)."""
        if self._marker is None:
            self._marker = read_marker(self.fs, self.marker_path)
        return self._marker

    @property
    def marker_path(self) -> str:
        """The marker file read (:meth:`eqegs_repo.io.layout.TreeLayout.found_marker_path`)."""
        return self.layout.found_marker_path(self.fs, self.path)

    def info(self) -> "SampleInfo":
        """The marker's content plus the raw files' sizes in bytes (the files of the run that
        exist); reads no array. A
        :class:`~eqegs_repo.display.SampleInfo`: a mapping (``info()["n_frames"]``,
        ``.to_dict()``) that prints as a summary."""
        out = {"proposal": self.proposal.key, "sample": self.key, "path": self.path}
        out.update(self.marker)
        out["files"] = run_file_sizes(self.fs, open_run(self.fs, self.path, self.marker, self.layout).files)
        out["raw_bytes"] = sum(out["files"].values())
        from eqegs_repo.cooking.inputs import input_text

        run = self._input_or_none()
        if run is not None and run.kind != "raw":
            out["input"] = f"{input_text(run)}: {run.path}" + (f"; the raw data: {run.reason}" if run.reason else "")
        users = self._background_users()
        if users is not None:
            fresh = [step for step, state in self._cache_status_or_empty().items() if state == "fresh"]
            out["role"] = "background run (reconstruction and q_integration apply)"
            out["background_for"] = users
            out["cooked"] = fresh
        return SampleInfo(out)

    def _background_users(self):
        """None for a sample, else (the proposal's background run: its own spice names it as
        ``q_integration.bg_sample_id``) the keys of the samples that subtract it."""
        from eqegs_repo.cooking.inputs import background_users, is_background_run

        try:
            if not is_background_run(self, self.spice):
                return None
        except (SpiceError, BadInput):
            return None
        return background_users(self)

    def _input_or_none(self):
        """The input a cook reads (:func:`eqegs_repo.cooking.inputs.sample_input`), or None when
        it cannot be told (spice that does not resolve, no readable input)."""
        from eqegs_repo.cooking.inputs import sample_input

        try:
            return sample_input(self)
        except (SpiceError, BadInput):
            return None

    def _cache_status_or_empty(self):
        try:
            return self.cache_status()
        except (SpiceError, BadInput):
            return {}

    @property
    def raw(self) -> "xarray.Dataset":
        """Lazy ``xarray.Dataset``: ``counts(sensor, frame, row, col)``, ``velocity(frame)``.

        Only the headers are read; values are read when asked for, e.g.
        ``s.raw.counts[:, 100:200].values`` reads frames 100..199 only.
        """
        if self._raw is None:
            self._raw = self.open_raw()
        return self._raw

    def open_raw(self, chunks: int | None = None) -> "xarray.Dataset":
        """Like :attr:`raw`; ``chunks`` = frames per chunk gives Dask-backed variables."""
        from eqegs_repo.io.raw import open_raw  # on first use: a listing imports no xarray

        return open_raw(self.fs, self.path, self.marker, self.layout, chunks=chunks)

    @property
    def spice(self) -> "ResolvedView":
        """Resolved parameters: defaults < repository view at the proposal < proposal view here."""
        from eqegs_repo.params.binding import sample_spice

        return sample_spice(self)

    def cook(self, step: StepName = "e_spectrum_and_isf", *, use_cache: bool = True,
             **overrides: Any) -> "xarray.Dataset":
        """Run the chain up to ``step`` and return its ``xarray.Dataset`` (cached).

        ``step``: ``"reconstruction"``, ``"q_integration"``, ``"e_spectrum_and_isf"`` or another
        step of :mod:`eqegs_repo.step_table`.
        ``overrides``: one-off parameter values that write no spice, as ``field=value`` (a field
        name of one spice type, e.g. ``q_min=10``) or ``type={field: value}``; they appear in
        ``.attrs["overrides"]``. ``use_cache=False`` computes without reading or writing the
        cache. See docs/reconstruction.md, docs/q-integration.md, docs/e-spectrum-and-isf.md.
        """
        from eqegs_repo.cooking.cook import cook

        return cook(self, step, use_cache=use_cache, **overrides)

    @property
    def cooked(self) -> "xarray.Dataset":
        """The final result: ``cook("e_spectrum_and_isf")`` with the sample's spice."""
        return self.cook("e_spectrum_and_isf")

    def q_resolved(self, ranges: Any, *, beta: Any = None, use_cache: bool = True,
                   **overrides: Any) -> "xarray.Dataset":
        """E spectrum, ISF and fit of many q ranges from one q integration, as one dataset with a
        ``q_range`` dimension (:func:`eqegs_repo.cooking.q_resolved.q_resolved`).

        ``ranges``: ``[(q_min, q_max), ...]`` in nm⁻¹, or an int n that splits the resolved q
        range into n equal ranges; ``beta``: None (each range's fit as the step's ``fit_model``),
        ``"shared"`` (one Kohlrausch β fitted across the ranges) or a number (β fixed);
        ``overrides``: as for :meth:`cook`. Fit the τ(q) law with
        :func:`eqegs_repo.cooking.q_resolved.tau_q_law` (docs/e-spectrum-and-isf.md#q-resolved-dynamics).
        """
        from eqegs_repo.cooking.q_resolved import q_resolved

        return q_resolved(self, ranges, beta=beta, use_cache=use_cache, **overrides)

    def cache_status(self, **overrides: Any) -> dict[str, str]:
        """``{step: "fresh" | "stale" | ""}`` of the cached results for the current spice and
        ``overrides`` (the keywords of :meth:`cook`; see :mod:`eqegs_repo.cooking.cook`)."""
        from eqegs_repo.cooking.cook import cache_status

        return cache_status(self, **overrides)

    def export(self, step: StepName, subdir: str | None = None, overwrite: bool = False, skip_existing: bool = False,
               *, use_cache: bool = True, replace_stale: bool = False, **overrides: Any) -> "Exported":
        """Write ``cook(step, **overrides)`` as the app's step folder and download zip
        (:func:`eqegs_repo.cooking.export.export`, docs/outputs.md). ``subdir``: sub-folder name instead
        of the parameters' one; an existing result raises unless ``overwrite=True`` (replace)
        or ``skip_existing=True`` (leave it); ``replace_stale=True`` replaces one this library
        wrote with the same overrides for older inputs. ``use_cache`` and ``overrides``: as for
        :meth:`cook`. Returns :class:`~eqegs_repo.cooking.export.Exported`."""
        from eqegs_repo.cooking.export import export

        return export(self, step, subdir, overwrite, skip_existing, use_cache=use_cache,
                      replace_stale=replace_stale, **overrides)

    def export_nexus(self, path: str | None = None, *, overwrite: bool = False, use_cache: bool = True,
                     **overrides: Any) -> str:
        """Write the sample's I(q), ISF with errors, fit and provenance as one NeXus/HDF5 file
        (:func:`eqegs_repo.cooking.nexus_export.export_nexus`, docs/outputs.md#nexus-files); ``path``
        defaults to ``<sample folder>/<sample>.nxs``. An existing file raises unless
        ``overwrite=True``. ``use_cache`` and ``overrides``: as for :meth:`cook`. Returns the path."""
        from eqegs_repo.cooking.nexus_export import export_nexus

        return export_nexus(self, path, overwrite=overwrite, use_cache=use_cache, **overrides)

    def export_poni(self, path: str, *, centre: tuple[float, float] | None = None, cook: bool = False,
                    overwrite: bool = False, **overrides: Any) -> "Poni":
        """Write the sample's geometry and beam centre as a pyFAI ``.poni`` file
        (:func:`eqegs_repo.cooking.poni_export.export_poni`, docs/spice.md#pyfai-poni-files): the
        ``centre=(x, y)`` given, else the manual centre, else the one the q integration finds in the
        cached reconstruction (``cook=True`` cooks it). Returns the :class:`~eqegs_repo.io.poni_file.Poni` written."""
        from eqegs_repo.cooking.poni_export import export_poni

        return export_poni(self, path, centre=centre, cook=cook, overwrite=overwrite, **overrides)

    @property
    def results(self) -> "Results":
        """Step folders on disk (the app's or ours): step -> {``"main"`` or sub-folder ->
        Dataset read on first access, ``.attrs["parameters"]`` from dl/info/info.json}
        (:class:`eqegs_repo.io.app_format.reading.Results`, docs/outputs.md)."""
        from eqegs_repo.io.app_format.reading import Results

        return Results(self)

    def step_results(self) -> dict[str, list[str]]:
        """Dict step -> list of result folders on disk (``"main"`` and sub-folder names), by the
        rules of :func:`eqegs_repo.io.app_format.reading.result_folders`; an incomplete result (an
        export was stopped) is listed as ``"<name> (incomplete)"``, a stale one (exported by this
        library for inputs that changed since: :func:`eqegs_repo.cooking.export.stale_reason`) as
        ``"<name> (stale)"``."""
        from eqegs_repo.io.app_format.reading import step_folders

        present = set(list_folders(self.fs, self.path, "sample"))
        out = {}
        for step in step_table.names():
            complete, incomplete = step_folders(self.fs, self.path, step) if step in present else ({}, {})
            out[step] = ([f"{name} (stale)" if self._export_is_stale(step, folder) else name
                          for name, folder in complete.items()]
                         + [f"{name} (incomplete)" for name in incomplete])
        return out

    def _export_is_stale(self, step, folder):
        """Whether the result in ``folder`` is stale; False when that cannot be told (spice
        that does not resolve, a raw file missing: the sample's problem shows elsewhere)."""
        from eqegs_repo.cooking.export import stale_reason

        try:
            return bool(stale_reason(self, step, folder))
        except (BadInput, SpiceError, OSError):
            return False

    @staticmethod
    def _summary_columns():
        return ("key", "handle", "frames", "sensors", "sensor_shape", "dtype", "trains",
                "exposure_s", "input", *step_table.names(), "spice",
                "cooked", "stale", "role", "background_for", "problem", *CONDITION_COLUMNS)

    def _summary(self, check):
        from eqegs_repo.cooking.inputs import input_text, sample_input

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
            for step, found in self.step_results().items():
                row[step] = ",".join(found)
            row["spice"] = self.spice.status
            row.update(condition_columns(self.spice))
            run = sample_input(self)  # the raw run opened once per listing, shared with cache_status
            row["input"] = input_text(run)
            if check:
                row["dtype"] = str(run.stack.dtype)
            status = self.cache_status()
            row["cooked"] = ",".join(step for step, state in status.items() if state == "fresh")
            row["stale"] = ",".join(step for step, state in status.items() if state == "stale")
            users = self._background_users()
            row["role"] = "sample" if users is None else "background"
            row["background_for"] = "" if users is None else ",".join(users)
        except BadInput as exc:
            row["problem"] = str(exc)
        except SpiceError as exc:  # e.g. an unreadable .spice folder: this row only
            row["problem"] = f"spice: {exc}"
        return row

    def __repr__(self):
        where = f"{self.proposal.key}/{self.key}"
        try:
            m = self.marker
        except BadSample as exc:
            return f"<Sample {where}: broken: {exc}>"
        from eqegs_repo.cooking.inputs import has_app_reconstruction, input_text

        rows, cols = m["sensor_shape"]
        run = self._input_or_none() if has_app_reconstruction(self) else None
        source = f", from the {input_text(run)}" if run is not None and run.kind != "raw" else ""
        users = self._background_users()
        if users is not None:
            where += (f": background run of {', '.join(users) or 'no sample yet'} "
                      f"({', '.join(step_table.background_steps())} apply)")
        return (f"<Sample {where}: {m['n_frames']} frames, {m['n_sensors']} sensors of "
                f"{rows} x {cols}{', ' + m['dtype'] if 'dtype' in m else ''}{source}>")

    def _repr_html_(self):
        from spice import SpiceError
        from spice.display import html_table

        title = f"Sample <code>{html.escape(self.proposal.key)}/{html.escape(self.key)}</code>"
        row = self._summary(check=True)
        status = sample_status(row)
        head = (f"<p>{title}: <span style='{STATUS_STYLES.get(status, '')}'>{html.escape(status)}</span>"
                + (f": {html.escape(row['problem'])}" if row["problem"] else "") + "</p>")
        try:
            info = self.info().to_dict()
        except BadSample:
            return head + html_rows([("path", self.path)])
        files = info.pop("files")
        for name in ("background_for", "cooked"):
            if name in info:
                info[name] = ", ".join(info[name]) or "-"
        info["files"] = ", ".join(f"{name} ({size / 1e6:.3g} MB)" for name, size in files.items())
        try:
            cache = self.cache_status()
        except BadInput as exc:
            cache = dict.fromkeys(step_table.names(), f"unknown ({exc})")
        applies = step_table.background_steps() if status == "background" else step_table.names()
        results = [(step, ", ".join(found) or "-", (cache.get(step) or "-") if step in applies else "does not apply")
                   for step, found in self.step_results().items()]
        try:
            spice = self.spice._repr_html_()
        except (SpiceError, BadInput, OSError) as exc:  # the summary shows even so
            spice = f"<p>cannot resolve spice: {html.escape(str(exc))}</p>"
        return (head + html_rows(info.items())
                + "<p>Results</p>" + html_table(("step", "on disk", "cached"), results)
                + f"<details><summary>spice: {html.escape(str(row['spice']))}</summary>{spice}</details>")
