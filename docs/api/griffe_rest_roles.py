"""Griffe extension for the API reference: reST roles become code spans.

The docstrings write references Sphinx-style (``:func:`energy_spectra```,
``:class:`~eqegs_repo.kernels.q_integration.RadialIntegrator```). mkdocstrings renders Markdown,
where such a role would show as ``:func:`` followed by code; this turns it into the code span
alone (``~`` keeps only the last name, as in Sphinx). Loaded by mkdocs.yml
(``extensions: [docs/api/griffe_rest_roles.py]``).
"""
import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")


def code_span(match):
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class RestRoles(griffe.Extension):
    """Replace reST roles in every docstring by code spans, before the docstring is parsed."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(code_span, obj.docstring.value)
