"""Tab completion of step names in IPython and Jupyter: ``s.cook("<TAB>`` offers the steps.

Neither IPython nor jedi completes a string argument from its annotation (``typing.Literal``),
so the step names come from a matcher of IPython's completer (Matcher API v2). It answers when
the text before the cursor opens a string as the step of a ``.cook(`` or ``.export(`` call
(positional or ``step=``), or inside the ``steps=`` list of ``.reanalyze(`` or ``.watch(``, and
then hides the other matchers' answers (magics, file names). It is registered when
``eqegs_repo`` is imported inside IPython, or with ``%load_ext eqegs_repo.completion``.
"""
import re

from eqegs_repo.step_table import names as step_names

STEP_ARGUMENT = re.compile(
    r"""(?:\.(?:cook|export)\(\s*(?:step\s*=\s*)?"""
    r"""|\.(?:reanalyze|watch)\(.*\bsteps\s*=\s*[\[(]?(?:\s*['"]\w+['"]\s*,)*\s*)"""
    r"""(?P<quote>['"])(?P<prefix>\w*)\Z""")
"""Text before the cursor that asks for a step name: the call, the open quote, what is typed."""


def step_completions(text_before_cursor):
    """``(typed prefix, step names starting with it)`` when the text before the cursor asks for
    a step name (:data:`STEP_ARGUMENT`), else None."""
    found = STEP_ARGUMENT.search(text_before_cursor)
    if found is None:
        return None
    prefix = found.group("prefix")
    return prefix, [step for step in step_names() if step.startswith(prefix)]


def _matcher():
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher(identifier="eqegs_repo.step_names")
    def step_matcher(context):
        line = context.full_text.split("\n")[context.cursor_line][: context.cursor_position]
        found = step_completions(line)
        if not found or not found[1]:
            return {"completions": [], "suppress": False}
        prefix, steps = found
        return {"completions": [SimpleCompletion(step, type="step") for step in steps],
                "matched_fragment": prefix, "suppress": True, "ordered": True}

    return step_matcher


def load_ipython_extension(ipython):
    """Add the step matcher to ``ipython``'s completer (once)."""
    matchers = ipython.Completer.custom_matchers
    if not any(getattr(m, "matcher_identifier", None) == "eqegs_repo.step_names" for m in matchers):
        matchers.append(_matcher())


def register_in_running_ipython():
    """:func:`load_ipython_extension` on the running IPython shell, if there is one (IPython is
    never imported for this)."""
    import sys

    if "IPython" not in sys.modules:
        return
    shell = sys.modules["IPython"].get_ipython()
    if shell is not None and hasattr(shell, "Completer"):
        load_ipython_extension(shell)
