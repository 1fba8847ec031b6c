"""Repository URL patterns: ``/UserData/{account}/EQEGS/{proposal}/{sample}`` and friends.

A pattern is a path or any fsspec URL. ``{proposal}`` and ``{sample}`` each stand for (part of)
one path segment, ``{proposal}`` before ``{sample}``; the sample segment is the last one (the
sample folder). Other ``{fields}`` are filled from keyword arguments when the repository is
opened. A URL naming neither ``{proposal}`` nor ``{sample}`` is the folder holding the proposals
(the EQEGS folder itself): ``/{proposal}/{sample}`` is appended (:func:`with_sample_segments`).
"""
import re
import string
from dataclasses import dataclass

import fsspec

from eqegs_repo.errors import BadInput

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
        path = fsspec.get_filesystem_class(protocol)._strip_protocol(filled)
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
