"""Pure formatters: Passages → terminal text, JSON, Telegram HTML. No I/O here."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .dates import age, display_date
from .passage import Passage, Source

if TYPE_CHECKING:  # annotations only: importing answer.py would load the query stack
    from .answer import Reply

# Terminal control in an article must not reach a terminal or a chat: ESC ]0;… retitles the
# window, ESC [2J clears the screen, a bare CR overwrites the line. Stripped for display only:
# the stored text, its offsets and the JSON output stay exact.
_CONTROL = re.compile(
    r"\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"  # CSI sequences, 7- and 8-bit
    r"|\x1b[ -~]?"  # two-character escapes (ESC c resets the terminal), or a lone ESC
    r"|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]"  # the rest of C0 (but \t \n), DEL, C1
)
# json.dumps(ensure_ascii=False) escapes C0 but writes DEL and C1 raw; some terminals obey C1.
_JSON_C1 = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}

NO_ANSWER = ("No confident answer: the indexed articles don't seem to cover that. "
             "Try other words, or a narrower question.")
NO_SENTENCE = "These articles come closest, but no sentence in them answers that directly:"


def printable(text: str) -> str:
    """`text` without terminal control characters and escape sequences (those that are white
    space, like CR or a form feed, become a space): what may be shown of an article."""
    return _CONTROL.sub(lambda m: " " if m.group().isspace() else "", text)


def passage_dict(p: Passage) -> dict[str, Any]:
    """The JSON shape of one passage."""
    return {
        "rank": p.rank, "score": p.score, "text": p.text, "doc_id": p.doc_id, "path": p.path,
        "date": p.date.isoformat() if p.date else None, "title": p.title,
        "start": p.start, "end": p.end, "answer_start": p.answer_start, "answer_end": p.answer_end,
        "duplicates": [{"doc_id": s.doc_id, "path": s.path, "title": s.title,
                        "date": s.date.isoformat() if s.date else None} for s in p.duplicates],
    }


def reply_dict(reply: Reply) -> dict[str, Any]:
    """The JSON shape of a reply: the ranked passages as before, and what the reply chose."""
    lead = reply.answer
    return {
        "question": reply.question,
        "kind": reply.kind,
        "as_of": reply.as_of.isoformat() if reply.as_of else None,
        "answer": None if lead is None else {
            "text": lead.answer, "rank": lead.rank, "doc_id": lead.doc_id,
            "start": lead.answer_start, "end": lead.answer_end,
            "phrase": None if lead.phrase_end <= lead.phrase_start else {
                "text": lead.phrase, "start": lead.phrase_start, "end": lead.phrase_end}},
        "answers": [reply.results[i].rank for i in reply.answers],
        "shown": [p.rank for p in reply.results],
        "message": reply.message,
        "notice": reply.notice,
        "passages": [passage_dict(p) | {"age": _age(p, reply)} for p in reply.results],
    }


def to_json(reply: Reply) -> str:
    """`qabot ask --json`: one object (reply_dict)."""
    return dumps(reply_dict(reply))


def dumps(obj: dict[str, Any]) -> str:
    """JSON as `qabot ask --json` writes it (to_json; qabot serve adds fields to the object)."""
    return json.dumps(obj, ensure_ascii=False, indent=2).translate(_JSON_C1)


def _age(p: Passage | Source, reply: Reply) -> str | None:
    return age(p.date, reply.as_of) if p.date and reply.as_of else None


def source_line(p: Passage, reply: Reply) -> str:
    """`Headline · 27 Jul 2022 · 4 years ago`: the compact citation of a result."""
    parts = [p.title or p.doc_id]
    if p.date is not None:
        parts.append(display_date(p.date))
        when = _age(p, reply)
        if when:
            parts.append(when)
    else:
        parts.append("date unknown")
    return _squash(" · ".join(parts))


def citation(p: Passage) -> str:
    """Title, date and file of a passage on one line."""
    date = p.date.isoformat() if p.date else "date unknown"
    return printable(f"{p.title} — {date} — {p.doc_id}")


def to_terminal(reply: Reply, width: int = 100, bold: tuple[str, str] = ("", "")) -> str:
    """The reply for a terminal: the answer first, then one source line per result, then the
    passages (the answering sentence wrapped in `bold`) with their exact citations."""
    if reply.kind == "small_talk":
        return reply.message or ""
    head = [reply.notice] if reply.notice else []
    if not reply.results:
        return "\n".join([*head, NO_ANSWER])
    on, off = bold
    if reply.answers:
        for n, i in enumerate(reply.answers):
            p = reply.results[i]
            # Wrap the plain text, then put the emphasis back: escape codes would confuse textwrap.
            line = textwrap.fill(f"\x00{_marked(p)}\x01 [{p.rank}]", width=width,
                                 initial_indent="Answer: " if n == 0 else " " * 8,
                                 subsequent_indent=" " * 8, break_on_hyphens=False)
            # The phrase that answers is underlined where the sentence is bold (a terminal).
            under = ("\x1b[4m", "\x1b[24m") if on else ("", "")
            head.append(line.replace("\x00", on).replace("\x01", off)
                        .replace(_PHRASE[0], under[0]).replace(_PHRASE[1], under[1]))
    else:
        head.append(NO_SENTENCE)
    sources = [f"[{p.rank}] {source_line(p, reply)}" for p in reply.results]
    return "\n\n".join(["\n".join(head), "\n".join(sources), "Passages:",
                         terminal_passages(reply.results, width, bold)])


def terminal_passages(passages: Sequence[Passage], width: int = 100, bold: tuple[str, str] = ("", "")) -> str:
    """Numbered passages, the answering sentence wrapped in `bold`, each with its citation."""
    on, off = bold
    blocks = []
    for p in passages:
        a, b = p.answer_start - p.start, p.answer_end - p.start
        body, answer, rest = _squash(p.text[:a]), _squash(p.text[a:b]), _squash(p.text[b:])
        # Wrap the plain text, then put the emphasis back: escape codes would confuse textwrap.
        marked = " ".join(x for x in (body, "\x00" + answer + "\x01" if answer else "", rest) if x)
        wrapped = textwrap.fill(marked, width=width, initial_indent="   ", subsequent_indent="   ",
                                break_on_hyphens=False)  # never split "Aghdam-Khankendi"
        wrapped = wrapped.replace("\x00", on).replace("\x01", off)
        date = p.date.isoformat() if p.date else "date unknown"
        also = "".join(
            f"\n   also: {s.date.isoformat() if s.date else 'date unknown'} · {printable(s.path)}"
            for s in p.duplicates
        )
        blocks.append(
            f"[{p.rank}] {_squash(p.title)}\n   {date} · {printable(p.path)} · chars {p.start}–{p.end} · "
            f"score {p.score:.2f}{also}\n{wrapped}"
        )
    return "\n\n".join(blocks)


def telegram_passage(p: Passage) -> str:
    """One passage as Telegram HTML: text escaped, the answering sentence in bold, a citation."""
    a, b = p.answer_start - p.start, p.answer_end - p.start
    answer = _squash(p.text[a:b])
    body = (html.escape(_squash(p.text[:a])) + (" <b>" + html.escape(answer) + "</b> " if answer else " ")
            + html.escape(_squash(p.text[b:])))
    return f"[{p.rank}] {body.strip()}\n<i>{html.escape(citation(p))}</i>"


def _squash(text: str) -> str:
    return " ".join(printable(text).split())


# Where the answering phrase starts and ends inside a squashed sentence: private-use characters
# (taken out of the article's own text first) that no escaping touches, replaced by each front end.
_PHRASE = ("\ue000", "\ue001")


def _marked(p: Passage) -> str:
    """The answering sentence squashed, its phrase (if any) between the _PHRASE marks."""
    text = "".join(" " if c in _PHRASE else c for c in p.answer)  # an article's own marks: none
    a, b = p.phrase_start - p.answer_start, p.phrase_end - p.answer_start
    if not 0 <= a < b <= len(text):
        return _squash(text)
    return _squash(text[:a] + _PHRASE[0] + text[a:b] + _PHRASE[1] + text[b:])


# ---------------------------------------------------------------- Telegram messages
# Telegram counts a message's length on its visible text (HTML parsed, entities decoded) in
# UTF-16 code units, and refuses more than 4,096 of them.

TELEGRAM_LIMIT = 4096
SOURCES_PAGE_MAX = 20  # 20 entries of at most ~170 visible characters fit one message
_TOKEN = re.compile(r"<[^<>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z]+);|[\s\S]")
_TAG = re.compile(r"<(/?)([A-Za-z-]+)")
_CLOSERS = "\"'”’»)]"  # may follow a sentence's full stop: «He said "yes." Then…»


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's length limits."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def telegram_visible(text: str) -> str:
    """The text Telegram shows for an HTML message: tags dropped, entities decoded, trimmed."""
    return html.unescape(re.sub(r"<[^<>]*>", "", text)).strip()


def telegram_length(text: str) -> int:
    """What Telegram counts against TELEGRAM_LIMIT for an HTML message."""
    return utf16_len(telegram_visible(text))


def telegram_block(p: Passage) -> str:
    """One passage for a Telegram reply: `telegram_passage` plus the articles repeating its story."""
    also = "".join(
        f"\n<i>also: {html.escape(s.date.isoformat() if s.date else 'date unknown')} · "
        f"{html.escape(printable(s.doc_id))}</i>"
        for s in p.duplicates
    )
    return telegram_passage(p) + also


def telegram_reply(reply: Reply, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The bot's answer as HTML messages, each within `limit`, answer first: the answering
    sentences in bold with their [n], one source line per article they cite, then each result's
    passage in a collapsed (expandable) quote. Split between blocks, never inside one unless it
    alone is too long."""
    if reply.kind == "small_talk":
        return [html.escape(reply.message or "")]
    head = [html.escape(reply.notice)] if reply.notice else []
    if not reply.results:
        return ["\n\n".join([*head, html.escape(NO_ANSWER)])]
    lines = [f"<b>{_underlined(html.escape(_marked(reply.results[i])))}</b> [{reply.results[i].rank}]"
             for i in reply.answers] or [html.escape(NO_SENTENCE)]
    # Only the articles the answer lines cite get a source line; the others show theirs in the
    # collapsed quote: the reply stays one phone screen.
    cited = [reply.results[i] for i in reply.answers] or list(reply.results)
    sources = "\n".join(f"[{p.rank}] {html.escape(source_line(p, reply))}" for p in cited)
    first = "\n\n".join([*head, "\n".join(lines), sources])
    quotes = [f"<blockquote expandable>{telegram_block(p)}</blockquote>" for p in reply.results]
    return telegram_split([first, *quotes], limit, sep="\n")


def _underlined(text: str) -> str:
    return text.replace(_PHRASE[0], "<u>").replace(_PHRASE[1], "</u>")


def telegram_collapsed(text: str) -> str:
    """What a reader sees of an HTML message before expanding its collapsed quotes."""
    return telegram_visible(re.sub(r"<blockquote expandable>.*?</blockquote>", "", text, flags=re.S))


def telegram_split(blocks: Sequence[str], limit: int = TELEGRAM_LIMIT, sep: str = "\n\n") -> list[str]:
    """Pack HTML blocks into as few messages within `limit` as keeps them in order; a block too
    long for one message is cut with `telegram_cut` first."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in telegram_cut(block, limit):
            joined = f"{current}{sep}{piece}" if current else piece
            if telegram_length(joined) <= limit:
                current = joined
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def telegram_cut(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Cut one HTML block into pieces within `limit` visible UTF-16 units.

    Cuts fall at the last sentence end that fits, else the last line break, else the last
    space, else between two characters; never inside a tag or an entity (`&amp;`). Tags open
    at a cut are closed at the end of the piece and opened again at the start of the next, so
    every piece is valid Telegram HTML on its own.
    """
    tokens = _TOKEN.findall(text)
    pieces = []
    while True:
        while tokens and tokens[0].isspace():
            tokens.pop(0)
        cut = _find_cut(tokens, limit)
        if cut is None:
            break
        at, open_tags, skip = cut
        closing = "".join(f"</{_tag_name(t)}>" for t in reversed(open_tags))
        pieces.append("".join(tokens[:at]).rstrip() + closing)
        tokens = list(open_tags) + tokens[at + skip:]
    rest = "".join(tokens).strip()
    if telegram_visible(rest) or not pieces:
        pieces.append(rest)
    return pieces


def _tag_name(tag: str) -> str:
    m = _TAG.match(tag)
    return m.group(2) if m else ""


def _find_cut(tokens: list[str], limit: int) -> tuple[int, tuple[str, ...], int] | None:
    """Where to cut `tokens` so the head fits: (token index, tags open there, tokens to drop),
    or None when everything fits."""
    stack: list[str] = []
    size = 0
    best: dict[str, tuple[int, tuple[str, ...]]] = {}  # kind of boundary -> its last position
    tail = ""  # the last visible characters, to recognise a sentence end
    for i, tok in enumerate(tokens):
        if tok.startswith("<"):
            m = _TAG.match(tok)
            if m and m.group(1):
                if stack:
                    stack.pop()
            elif m:
                stack.append(tok)
            continue
        if tok.isspace() and size:
            kind = ("sentence" if tail.rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…")
                    else "line" if tok == "\n" else "space")
            best[kind] = (i, tuple(stack))
        width = utf16_len(html.unescape(tok))
        if size + width > limit and size:
            for kind in ("sentence", "line", "space"):
                if kind in best:
                    at, open_tags = best[kind]
                    return at, open_tags, 1
            return i, tuple(stack), 0
        size += width
        tail = (tail + html.unescape(tok))[-4:]
    return None


def _short(text: str, width: int, keep_end: bool = False) -> str:
    """At most `width` characters, an ellipsis marking what was left out."""
    text = _squash(text)
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[: width - 1].rstrip() + "…"


@dataclass(frozen=True)
class SourcesPage:
    """Which /sources page to show: its number (1-based), the number of pages, their size."""

    page: int
    pages: int
    size: int

    @property
    def offset(self) -> int:
        """How many articles come before this page."""
        return (self.page - 1) * self.size


def sources_page(total: int, page: int, page_size: int) -> SourcesPage:
    """The /sources page to show of `total` articles: `page` clamped into range, and
    `page_size` to SOURCES_PAGE_MAX, so every page fits one message."""
    size = max(1, min(page_size, SOURCES_PAGE_MAX))
    pages = max(1, (total + size - 1) // size)
    return SourcesPage(max(1, min(page, pages)), pages, size)


def telegram_sources(
    articles: Sequence[tuple[str, dt.date | None, str]], total: int, at: SourcesPage
) -> str:
    """One page of the indexed articles (title, date, doc id), already newest first and at
    most `at.size` of them, out of `total`, as Telegram HTML."""
    if total == 0:
        return "No articles are indexed yet."
    lines = [f"<b>{total} indexed article{'s' if total != 1 else ''}</b>, newest "
             f"first (page {at.page} of {at.pages}):"]
    for n, (title, date, doc_id) in enumerate(articles[: at.size], at.offset + 1):
        lines.append(f"{n}. {html.escape(_short(title, 90))}\n"
                     f"<i>{date.isoformat() if date else 'date unknown'} · "
                     f"{html.escape(_short(doc_id, 60, keep_end=True))}</i>")
    if at.page < at.pages:
        lines.append(f"More: /sources {at.page + 1}")
    return "\n".join(lines)


def telegram_welcome(articles: int, first: dt.date | None, last: dt.date | None, answers: int,
                     group: bool = False) -> str:
    """The /start message: what the bot is, what it knows, how to ask (in a group: not by plain
    messages, which the bot leaves alone there)."""
    if articles == 0:
        known = "No articles are indexed yet, so I can't answer anything for now."
    else:
        span = (f", from {first.isoformat()} to {last.isoformat()}" if first and last and first != last
                else f", from {first.isoformat()}" if first else "")
        known = f"I know <b>{articles} news article{'s' if articles != 1 else ''}</b>{span}."
    return (
        "Hello! I answer questions about a collection of news articles. " + known + "\n\n"
        + ("In this group, ask with /ask followed by your question, mention me in your message, "
           "or reply to one of my messages; I leave the rest of the conversation alone. "
           if group else "Send me a question in plain words. ")
        + "I reply with the sentence that answers it, in "
        f"<b>bold</b>, and its source (headline, date, age); the passages behind it, from up to "
        f"{answers} articles, open with a tap.\n\n" + telegram_help_lines()
    )


def telegram_help_lines() -> str:
    """How to ask, and the commands (the body of /help)."""
    return (
        "<b>How to ask</b>\n"
        "• In a private chat: just write your question.\n"
        "• Follow-ups such as “and when?”, or a reply to my answer, are read with your previous "
        "question.\n"
        "• In a group: /ask followed by the question, mention me in your message, or reply to "
        "one of my messages.\n\n"
        "<b>Commands</b>\n"
        "/ask &lt;question&gt; — ask a question\n"
        "/sources — the articles I know (/sources 2 for page 2)\n"
        "/new — start afresh: forget the previous question\n"
        "/help — this message"
    )
