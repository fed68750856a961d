"""Long texts on the review page: Markdown rendered safely, and how tall a text's editor starts. No Django here."""

from __future__ import annotations

from functools import cache

# A user or system turn longer than this starts folded on the review page (the answer never does).
LONG_TURN_CHARS = 1500
# Characters a line of the editor holds before it wraps, roughly (a 14 px monospace font in the review column).
LINE_CHARS = 90


@cache
def _markdown():
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: any HTML in an example shows as text. Images are off too: rendering a turn must
    # not fetch anything from the addresses a dataset holds. markdown-it refuses javascript:, vbscript:, file: and
    # data: links (validateLink); the links it keeps open nothing in this tab's context (rel noopener).
    md = MarkdownIt("commonmark", {"html": False}).disable("image")

    def link_open(self, tokens, index, options, env):
        tokens[index].attrSet("rel", "noopener noreferrer nofollow")
        tokens[index].attrSet("target", "_blank")
        return self.renderToken(tokens, index, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def markdown_html(text: str) -> str:
    """The text as HTML from Markdown; safe to insert into a page whatever the text holds."""
    return _markdown().render(text or "")


def editor_rows(text: str, *, minimum: int = 2) -> int:
    """Rows that show the whole text in the editor before any script runs (the script then fits it exactly)."""
    rows = sum(max(1, -(-len(line) // LINE_CHARS)) for line in (text or "").split("\n"))
    return max(minimum, rows)
