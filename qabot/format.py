"""Pure formatters: Passages → terminal text, JSON, Telegram HTML. No I/O here."""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Sequence
from typing import Any

from .retrieve import Passage

NO_ANSWER = "The indexed articles don't seem to cover that. Try other words, or a narrower question."


def passage_dict(p: Passage) -> dict[str, Any]:
    """The JSON shape of one passage."""
    return {
        "rank": p.rank, "score": p.score, "text": p.text, "doc_id": p.doc_id, "path": p.path,
        "date": p.date.isoformat() if p.date else None, "title": p.title,
        "start": p.start, "end": p.end, "answer_start": p.answer_start, "answer_end": p.answer_end,
    }


def to_json(question: str, passages: Sequence[Passage]) -> str:
    """`qabot ask --json`: one object with the question and the ranked passages."""
    return json.dumps(
        {"question": question, "passages": [passage_dict(p) for p in passages]},
        ensure_ascii=False, indent=2,
    )


def citation(p: Passage) -> str:
    """Title, date and file of a passage on one line."""
    date = p.date.isoformat() if p.date else "date unknown"
    return f"{p.title} — {date} — {p.doc_id}"


def to_terminal(passages: Sequence[Passage], width: int = 100, bold: tuple[str, str] = ("", "")) -> str:
    """Numbered passages, the answering sentence wrapped in `bold`, each with its citation."""
    if not passages:
        return NO_ANSWER
    on, off = bold
    blocks = []
    for p in passages:
        a, b = p.answer_start - p.start, p.answer_end - p.start
        body = " ".join(p.text[:a].split())
        answer = " ".join(p.text[a:b].split())
        rest = " ".join(p.text[b:].split())
        # Wrap the plain text, then put the emphasis back: escape codes would confuse textwrap.
        marked = " ".join(x for x in (body, "\x00" + answer + "\x01", rest) if x)
        wrapped = textwrap.fill(marked, width=width, initial_indent="   ", subsequent_indent="   ",
                                break_on_hyphens=False)  # never split "Aghdam-Khankendi"
        wrapped = wrapped.replace("\x00", on).replace("\x01", off)
        date = p.date.isoformat() if p.date else "date unknown"
        blocks.append(
            f"{p.rank}. {p.title}\n   {date} · {p.path} · chars {p.start}–{p.end} · "
            f"score {p.score:.2f}\n{wrapped}"
        )
    return "\n\n".join(blocks)


def telegram_passage(p: Passage) -> str:
    """One passage as Telegram HTML: text escaped, the answering sentence in bold, a citation."""
    a, b = p.answer_start - p.start, p.answer_end - p.start
    body = (html.escape(_squash(p.text[:a])) + " <b>" + html.escape(_squash(p.text[a:b]))
            + "</b> " + html.escape(_squash(p.text[b:])))
    return f"{p.rank}. {body.strip()}\n<i>{html.escape(citation(p))}</i>"


def _squash(text: str) -> str:
    return " ".join(text.split())
