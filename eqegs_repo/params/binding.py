"""Spice collections and views for Repository, Proposal and Sample.

- :func:`repository_spice` -- records anchored at proposal keys, in ``<root>/.spice/`` or
  ``<spice_url>/repository/``;
- :func:`proposal_spice` -- records anchored at sample keys, in ``<proposal folder>/.spice/``
  or ``<spice_url>/proposals/<proposal key>/``; it also imports the app's ``data_table.csv``
  (:mod:`eqegs_repo.params.data_table`) and pyFAI ``.poni`` files
  (:mod:`eqegs_repo.params.poni_spice`);
- :func:`sample_spice` -- the resolved view: built-in defaults < repository view at the
  proposal key < proposal view at the sample key.

``spice_url="memory://"`` keeps records in memory, separately for each Repository
(:func:`resolve_spice_url`); ``memory://name`` shares the store ``name`` within the process.
"""
import uuid

from eqegs_repo.io.calibration_files import hash_calibration_folder
from eqegs_repo.params import types as params
from eqegs_repo.params.poni_spice import import_poni
from eqegs_repo.urls import open_filesystem
from eqegs_repo.snapshot import remembered
from spice import Collection, ResolvedView, open_store

BARE_MEMORY_URLS = ("memory://", "memory:///", "memory:")


def resolve_spice_url(spice_url):
    """A bare ``memory://`` becomes ``memory://spice-<random>`` (one store per Repository);
    anything else is returned unchanged."""
    if spice_url is not None and str(spice_url).strip() in BARE_MEMORY_URLS:
        return f"memory://spice-{uuid.uuid4().hex}"
    return spice_url


def _spice_url(repo):
    """The repository's spice URL with a bare ``memory://`` resolved once per object."""
    url = getattr(repo, "spice_url", None)
    if url is None or str(url).strip() not in BARE_MEMORY_URLS:
        return url
    resolved = repo.__dict__.get("_spice_memory_url")
    if resolved is None:
        resolved = resolve_spice_url(url)
        repo.__dict__["_spice_memory_url"] = resolved  # pickled with the repository
    return resolved


def prepare_values(type_name, values):
    """Fill in derived values before a record is written (the collections' ``prepare``): a
    calibration ``folder`` given without ``files`` gets the SHA-256 of each file of the folder
    (:func:`~eqegs_repo.io.calibration_files.hash_calibration_folder`), so later runs can tell
    if a file changed."""
    if type_name == "calibration" and values.get("folder") and "files" not in values:
        values["files"] = hash_calibration_folder(values["folder"])
    return values


def _collection(store, scope, cls=Collection, **extra):
    return cls(store, registry=params.REGISTRY, scope=scope, prepare=prepare_values,
               **extra)


def _store(url):
    """The spice store at ``url`` under ``spice_url``; a package missing for its protocol or a
    server that does not answer is one error naming spice_url
    (:func:`~eqegs_repo.urls.open_filesystem`)."""
    fs, path = open_filesystem(url, "spice_url")
    return open_store(path, fs=fs)


def repository_spice(repo):
    """The repository's collection (anchors are proposal keys, natural order)."""
    url = _spice_url(repo)
    if url is None:
        store = open_store(f"{str(repo.root).rstrip('/')}/.spice", fs=repo.fs)
    else:
        store = _store(f"{str(url).rstrip('/')}/repository")
    return _collection(store, "repository")


def proposal_spice(proposal):
    """The proposal's collection (anchors are sample keys, natural order), a
    :class:`ProposalSpice` with :meth:`ProposalSpice.import_data_table`."""
    repo = proposal.repository
    url = _spice_url(repo)
    if url is None:
        store = open_store(f"{str(proposal.path).rstrip('/')}/.spice", fs=repo.fs)
    else:
        store = _store(f"{str(url).rstrip('/')}/proposals/{proposal.key}")
    return _collection(store, "proposal", ProposalSpice, proposal=proposal)


def sample_spice(sample):
    """The resolved view of a sample's parameters (see the module docstring)."""
    proposal = sample.proposal
    return remembered(("sample spice", proposal, sample.key), lambda: ResolvedView(
        [("repository", proposal.repository.spice, proposal.key),
         ("proposal", proposal.spice, sample.key)], params.REGISTRY,
        shared=remembered(("spice views", proposal), dict)))


class ProposalSpice(Collection):
    """A proposal's collection; knows its proposal to match data_table.csv rows to samples."""

    def __init__(self, store, *, proposal, **options):
        super().__init__(store, **options)
        self.proposal = proposal

    def __getstate__(self):
        return {**super().__getstate__(), "proposal": self.proposal}

    def import_data_table(self, path, *, dry_run=False, author=None, fs=None,
                          conditions_from_comments=False):
        """Turn the app's data_table.csv into ``calibration`` records at the matching samples
        (and, with ``conditions_from_comments``, ``conditions`` records from the comments).

        See :func:`eqegs_repo.params.data_table.import_data_table`; the sample keys are the
        proposal's.
        """
        from eqegs_repo.params.data_table import import_data_table  # imports xarray: on first use

        return import_data_table(self, path, self.proposal.sample_keys(), dry_run=dry_run,
                                 author=author, fs=fs, conditions_from_comments=conditions_from_comments)

    def import_poni(self, path, anchor="", *, centre=True, dry_run=False, author=None,
                    comment=None):
        """Write the geometry and beam centre of a pyFAI ``.poni`` file at ``anchor`` (a sample
        key; '' = every sample); see :func:`eqegs_repo.params.poni_spice.import_poni`."""
        return import_poni(self, path, anchor, centre=centre, dry_run=dry_run, author=author,
                           comment=comment)
