"""Repository URL patterns: ``/UserData/{account}/EQEGS/{proposal}/{sample}`` and friends.

A pattern is a path or any fsspec URL. ``{proposal}`` and ``{sample}`` each stand for (part of)
one path segment, ``{proposal}`` before ``{sample}``; the sample segment is the last one (the
sample folder). Other ``{fields}`` are filled from keyword arguments when the repository is
opened. A URL naming neither ``{proposal}`` nor ``{sample}`` is the folder holding the proposals
(the EQEGS folder itself): ``/{proposal}/{sample}`` is appended (:func:`with_sample_segments`).
"""
import ftplib
import re
import socket
import string
from dataclasses import dataclass

import fsspec

from eqegs_repo.errors import BadInput, MissingExtra

REQUIRED = ("proposal", "sample")
FOLDER_SEGMENTS = "/{proposal}/{sample}"
"""What a URL naming the EQEGS folder itself stands for: proposal folders, sample folders in them."""


def with_sample_segments(url):
    """``url`` as a pattern: unchanged when it names ``{proposal}`` or ``{sample}``, else (the
    EQEGS folder itself, e.g. ``/UserData/u0000000/EQEGS``) with :data:`FOLDER_SEGMENTS`
    appended. The one rule of ``Repository(url)`` and the ``eqegs`` commands."""
    if not isinstance(url, str) or any("{" + f + "}" in url for f in REQUIRED):
        return url
    return url.rstrip("/") + FOLDER_SEGMENTS


def _missing_module(exc):
    """The name of the module whose absence made fsspec refuse a protocol (``aiohttp``), or None."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name.split(".")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def _open_error(exc, where, url, protocol):
    """The EqegsError of fsspec failing to open ``url`` (named as ``where``): a missing package
    (MissingExtra naming it), an unknown protocol, or a server that did not answer (BadInput)."""
    if isinstance(exc, ImportError):
        module = _missing_module(exc)
        install = f"pip install {module}" if module else "install the package it names"
        return MissingExtra(f"{where} {url}: expected fsspec's {protocol} filesystem, found it not "
                            f"installed ({exc}); {install}")
    if isinstance(exc, ValueError):
        return BadInput(f"{where} {url}: expected a path or a URL of a known fsspec protocol, found "
                        f"{exc}")
    if isinstance(exc, EOFError):
        found = "the connection closed before an answer"
    elif isinstance(exc, socket.timeout):
        found = "no answer in time"
    elif isinstance(exc, OSError) and exc.strerror:
        found = exc.strerror
    else:
        found = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return BadInput(f"{where} {url}: expected its {protocol} server to answer, found {found}")


_OPEN_ERRORS = (ImportError, ValueError, EOFError, OSError, ftplib.Error)
"""What fsspec raises when it cannot open a filesystem (its package missing, an unknown protocol,
a server that refuses, closes or does not answer)."""


def open_filesystem(url, where, **storage_options):
    """``(fs, path)`` of ``url`` (a path or fsspec URL, as ``fsspec.core.url_to_fs``), or one
    error naming ``where`` (the setting or argument that gave it: ``"cache_url"``) and the URL:
    :class:`~eqegs_repo.errors.MissingExtra` naming the package to install when the protocol's
    package is missing (``http://`` without aiohttp), BadInput for an unknown protocol or a
    server that refuses, closes the connection or does not answer."""
    url = str(url)
    try:
        return fsspec.core.url_to_fs(url, **storage_options)
    except _OPEN_ERRORS as exc:
        raise _open_error(exc, where, url, fsspec.core.split_protocol(url)[0] or "file") from None


def _fields(text):
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def _segment_regex(segment, field):
    """Regex for one path segment containing ``{field}`` (and literal text around it)."""
    head, tail = segment.split("{" + field + "}", 1)
    if "{" + field + "}" in tail:
        raise BadInput(f"URL segment {segment!r} holds {{{field}}} twice")
    return re.compile(re.escape(head) + r"(?P<key>[^/]+?)" + re.escape(tail) + r"\Z")


@dataclass(frozen=True)
class UrlPattern:
    """A parsed repository URL.

    ``protocol``: fsspec protocol (``file``, ``memory``, ``s3``...); ``root``: the folder holding
    the proposal folders; ``proposal_segment``: the segment naming a proposal (e.g.
    ``{proposal}``); ``middle``: literal segments between proposal and sample folder;
    ``sample_segment``: the segment naming a sample.
    """

    url: str
    protocol: str
    root: str
    proposal_segment: str
    middle: tuple
    sample_segment: str

    @classmethod
    def parse(cls, url, fields=None):
        """Parse ``url``, filling every field but ``{proposal}``/``{sample}`` from ``fields``."""
        if not isinstance(url, str) or not url:
            raise BadInput(f"repository URL must be a non-empty string, got {url!r}")
        url = with_sample_segments(url)
        fields = dict(fields or {})
        names = _fields(url)
        missing_required = [f for f in REQUIRED if f not in names]
        if missing_required:
            raise BadInput(
                f"repository URL {url!r} must contain {{proposal}} and {{sample}}; "
                f"missing: {', '.join('{' + m + '}' for m in missing_required)}"
            )
        extra = sorted(set(names) - set(REQUIRED))
        unfilled = [f for f in extra if f not in fields]
        if unfilled:
            raise BadInput(
                f"repository URL {url!r} has the field(s) {', '.join('{' + f + '}' for f in unfilled)}; "
                f"give them as keyword arguments, e.g. Repository(url, {unfilled[0]}=...)"
            )
        unused = sorted(set(fields) - set(extra))
        if unused:
            raise BadInput(f"field(s) {unused} are not in the repository URL {url!r}")
        for name in extra:
            value = str(fields[name])
            if not value or "/" in value or ".." in value:
                raise BadInput(f"URL field {name}={value!r} must be a folder name (no '/' or '..')")
        filled = url
        for name in extra:
            filled = filled.replace("{" + name + "}", str(fields[name]))
        protocol = fsspec.core.split_protocol(filled)[0] or "file"
        try:
            path = fsspec.get_filesystem_class(protocol)._strip_protocol(filled)
        except (ImportError, ValueError) as exc:
            raise _open_error(exc, "repository URL", url, protocol) from None
        segments = path.rstrip("/").split("/")
        where = {f: [i for i, s in enumerate(segments) if "{" + f + "}" in s] for f in REQUIRED}
        for f in REQUIRED:
            if len(where[f]) != 1:
                raise BadInput(f"repository URL {url!r} must hold {{{f}}} in exactly one path segment")
        ip, isam = where["proposal"][0], where["sample"][0]
        if ip == isam:
            raise BadInput(f"repository URL {url!r}: put {{proposal}} and {{sample}} in separate segments")
        if not ip < isam or isam != len(segments) - 1:
            raise BadInput(
                f"repository URL {url!r}: {{proposal}} must come before {{sample}}, and the "
                "sample segment must be the last one (the sample folder)"
            )
        root = "/".join(segments[:ip]) or "/"
        return cls(url, protocol, root, segments[ip], tuple(segments[ip + 1 : isam]), segments[isam])

    def proposal_key(self, folder_name):
        """The proposal key of a folder name, or None when the name does not match."""
        m = _segment_regex(self.proposal_segment, "proposal").match(folder_name)
        return m.group("key") if m else None

    def sample_key(self, folder_name):
        """The sample key of a folder name, or None when the name does not match."""
        m = _segment_regex(self.sample_segment, "sample").match(folder_name)
        return m.group("key") if m else None

    def proposal_path(self, proposal):
        """Path (without protocol) of a proposal folder."""
        return f"{self.root.rstrip('/')}/{self.proposal_segment.replace('{proposal}', proposal)}"

    def samples_parent(self, proposal):
        """Path of the folder that holds a proposal's sample folders."""
        return "/".join([self.proposal_path(proposal), *self.middle])

    def sample_path(self, proposal, sample):
        """Path (without protocol) of a sample folder."""
        return f"{self.samples_parent(proposal)}/{self.sample_segment.replace('{sample}', sample)}"
