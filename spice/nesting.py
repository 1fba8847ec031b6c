"""How deeply YAML text nests its collections, measured on the characters before a parser sees them.

Why: the libyaml that some PyYAML wheels carry refuses nesting beyond its own limit (1000 levels in
PyYAML 6.0.4) with its own message ("while increasing flow level"), and its scanner reads up to
1024 characters ahead of the events a reader walks. So ``{a: [[[[...`` reaches that limit before
the reader has seen 36 levels, and which refusal a user gets would depend on the build.
:func:`nesting_depth` follows the scanner's rules for what opens a collection, on the text alone:

* a flow collection opens at ``[`` or ``{`` where a token starts (not inside a quoted, plain or
  block scalar, a comment, a tag or an anchor), and closes at ``]`` or ``}``;
* a block collection opens where the scanner raises its indentation: a ``-`` or ``?`` entry, or a
  key (what precedes a ``:`` value indicator on the same line), at a column deeper than the open
  block collections; a line starting at a lesser column closes the deeper ones.

Each level counted is a collection a parser would open (an indentless sequence, ``key:`` followed
by ``- item`` at the key's column, opens one more that is not counted), so the measure never
exceeds the depth a reader finds: refusing text whose measure is too deep never refuses a record
the reader would accept.
"""
import re

_BREAKS = "\r\n\x85\u2028\u2029"  # what the scanner takes for a line break
_ENDS_A_WORD = " \t" + _BREAKS  # after "-", "?", ":" or "---": an indicator, not a plain scalar
_ANCHOR = re.compile(r"[&*][-0-9A-Za-z_]*")  # &anchor, *alias: the scanner's name characters
_TAG = re.compile(r"![^ \t\r\n\x85\u2028\u2029,\[\]{}]*")  # !tag, up to a blank or a bracket
_TO_BREAK = re.compile(r"[^\r\n\x85\u2028\u2029]*")
_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'?")  # '' is a quote inside; unterminated: to the end
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?', re.S)
# A plain scalar up to its end on this line: ": " (or ":" then a break), blanks before "#" or a
# break; in a flow collection also , [ ] { } and ":" before one of them.
_PLAIN_IN_BLOCK = re.compile(r"(?:[^ \t:\r\n\x85\u2028\u2029]|:(?=[^ \t\r\n\x85\u2028\u2029])"
                             r"|[ \t]+(?=[^ \t#\r\n\x85\u2028\u2029]))*")
_PLAIN_IN_FLOW = re.compile(r"(?:[^ \t:,\[\]{}\r\n\x85\u2028\u2029]|:(?=[^ \t,\[\]{}\r\n\x85\u2028\u2029])"
                            r"|[ \t]+(?=[^ \t#\r\n\x85\u2028\u2029]))*")
_LEADING_SPACES = re.compile(r" *")
# Plain words each followed by a comma (`1.5, -2, abc, `): most of a long flow list, skipped at once.
_WORDS_IN_FLOW = re.compile(r"(?:-?[0-9A-Za-z_.+][0-9A-Za-z_.+-]*,[ \t]*)+")


class _Lines:
    """Position in the text with the start of its line (columns count characters)."""

    def __init__(self, text):
        self.text, self.pos, self.line_start = text, 0, 0

    @property
    def column(self):
        return self.pos - self.line_start

    def skip(self, pattern):
        self.pos = max(pattern.match(self.text, self.pos).end(), self.pos + 1)

    def next_line(self):
        """Past the line break at ``pos``: the next line starts."""
        self.pos += 2 if self.text.startswith("\r\n", self.pos) else 1
        self.line_start = self.pos


def _skip_block_scalar(lines, indent):
    """Past the header and content of a ``|`` or ``>`` scalar whose parent block collection is at
    column ``indent`` (-1: none); ``lines.pos`` is then at the start of the first line after it."""
    text = lines.text
    header = _TO_BREAK.match(text, lines.pos).group()
    digit = re.match(r"[|>][+-]?([1-9])?", header).group(1)
    lines.pos += len(header)
    content = None if digit is None else max(indent, 0) + int(digit)
    widest_blank = 0
    while lines.pos < len(text):
        lines.next_line()
        spaces = len(_LEADING_SPACES.match(text, lines.pos).group())
        end = lines.pos + spaces
        if end == len(text) or text[end] in _BREAKS:  # an empty line belongs to the scalar
            widest_blank = max(widest_blank, spaces)
            lines.pos = end
            continue
        if content is None:  # the first line with text sets the scalar's indentation
            content = max(widest_blank, spaces, indent + 1, 1)
        if spaces < content:  # a line less indented ends the scalar
            return
        lines.pos = end + len(_TO_BREAK.match(text, end).group())


def nesting_depth(text, limit):
    """The deepest nesting of collections in the YAML ``text``: open block collections (by
    indentation) plus open flow collections (brackets), as a YAML scanner counts them. The walk
    stops as soon as the depth exceeds ``limit`` (then the value returned is ``limit + 1``).

    >>> nesting_depth("a: {b: [1, '[[['], c: d}", limit=10)
    3
    """
    lines = _Lines(text)
    indents = []  # columns of the open block collections, innermost last
    flow = 0  # open flow collections
    deepest = 0
    key_column = None  # where a key may have started on this line (block context)
    key_allowed = True  # the scanner may take the next token for a key
    line_first = True  # the next token is the first of its line
    plain_goes_on = None  # after a plain scalar ended a line: the column a continuation must pass

    def opened():
        nonlocal deepest
        deepest = max(deepest, len(indents) + flow)
        return deepest > limit

    def raise_block(column):
        if not indents or column > indents[-1]:
            indents.append(column)

    while lines.pos < len(text):
        ch = text[lines.pos]
        if ch in " \t":
            lines.pos += 1
            continue
        if ch in _BREAKS:
            lines.next_line()
            line_first, key_column = True, None
            key_allowed = key_allowed or not flow
            continue
        column, after = lines.column, text[lines.pos + 1:lines.pos + 2]
        if line_first:
            line_first = False
            if plain_goes_on is not None and ch != "#" and (flow or column > plain_goes_on):
                lines.skip(_PLAIN_IN_FLOW if flow else _PLAIN_IN_BLOCK)  # the plain scalar goes on
                continue
            if not flow:
                while indents and indents[-1] > column:
                    indents.pop()
                if column == 0 and text.startswith(("---", "..."), lines.pos) and (
                        text[lines.pos + 3:lines.pos + 4] in ("",) + tuple(_ENDS_A_WORD)):
                    indents.clear()
                    lines.pos += 3
                    continue
        plain_goes_on = None
        if ch == "#":
            lines.skip(_TO_BREAK)
        elif ch in "[{":
            if not flow and key_allowed:
                key_column = column
            flow += 1
            key_allowed = True
            lines.pos += 1
            if opened():
                return deepest
        elif ch in "]}":
            flow = max(flow - 1, 0)
            key_allowed = False
            lines.pos += 1
        elif ch == "," and flow:
            key_allowed = True
            lines.pos += 1
        elif ch in "-?" and (after == "" or after in _ENDS_A_WORD or (ch == "?" and flow)):
            if not flow:
                raise_block(column)
                if opened():
                    return deepest
            key_allowed = True
            lines.pos += 1
        elif ch == ":" and (flow or after == "" or after in _ENDS_A_WORD):
            if not flow:
                raise_block(column if key_column is None else key_column)
                if opened():
                    return deepest
            key_column, key_allowed = None, not flow
            lines.pos += 1
        elif ch in "|>" and not flow:
            _skip_block_scalar(lines, indents[-1] if indents else -1)
            line_first, key_column, key_allowed = True, None, True
        else:
            if not flow and key_allowed:
                key_column = column
            key_allowed = False
            if ch in "&*!":
                lines.skip(_TAG if ch == "!" else _ANCHOR)
            elif ch in "'\"":
                lines.skip(_SINGLE_QUOTED if ch == "'" else _DOUBLE_QUOTED)
            elif ch == "%" and column == 0 and not flow:
                lines.skip(_TO_BREAK)  # a directive
            elif flow and _WORDS_IN_FLOW.match(text, lines.pos):
                lines.skip(_WORDS_IN_FLOW)
                key_allowed = True
            else:
                lines.skip(_PLAIN_IN_FLOW if flow else _PLAIN_IN_BLOCK)
                rest = text[lines.pos:lines.pos + 1]
                while rest in (" ", "\t"):
                    lines.pos += 1
                    rest = text[lines.pos:lines.pos + 1]
                if rest == "" or rest in _BREAKS:
                    plain_goes_on = indents[-1] if indents and not flow else -1
    return deepest
