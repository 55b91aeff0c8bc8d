"""Check article titles on a real corpus: none too long, none empty, none boilerplate; a sample to read.

    .venv/bin/python benchmarks/headlines.py /tmp/news-dev/corpus            # counts + 40 titles
    .venv/bin/python benchmarks/headlines.py /tmp/news-dev/corpus --sample 0 --old

Titles come from `read_corpus`, the path `qabot index` uses. Two boilerplate checks are counted:
qabot's own detector (headline.is_boilerplate_sentence / is_boilerplate_line) and a blunt,
independent list of tell-tale openings below, so a blind spot of the first shows up in the second.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qabot import headline  # noqa: E402
from qabot.chunk import first_sentence  # noqa: E402
from qabot.corpus import read_corpus  # noqa: E402

# Deliberately simple and separate from headline.py: openings and phrases no title should have.
TELLTALE = re.compile(
    r"^(?:by |updated |published |posted |from usa today|special (?:to|for) )"
    r"|sign up (?:here|for free)|newsletter|subscribe|\(cnn|\(reuters\)|^cnn —|getty images|photo by"
    r"|(?-i:^[A-Z][A-Z ,.'-]{3,} [-–—] )|(?-i:\bCNN\b.{0,20}—)"
    r"|@\S+\.\w+|recommendations are|earn us a commission|%2C|%27",
    re.IGNORECASE,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--sample", type=int, default=40, help="titles to print (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sample")
    parser.add_argument("--old", action="store_true", help="also count the old first-sentence titles")
    parser.add_argument("--show", action="store_true", help="print every flagged title")
    args = parser.parse_args()

    articles, bad = read_corpus(args.seeds)
    titles = {a.doc_id: a.title for a in articles}
    print(f"{len(articles)} articles ({len(bad)} unreadable)")
    report("new", titles, args.show)
    if args.old:
        report("old", {a.doc_id: first_sentence(a.text, a.body_start) for a in articles}, args.show)
    rng = random.Random(args.seed)
    for doc_id in sorted(rng.sample(sorted(titles), min(args.sample, len(titles)))):
        print(f"  {titles[doc_id]}")


def report(name: str, titles: dict[str, str], show: bool) -> None:
    """Print the counts for one way of making titles."""
    long = [d for d, t in titles.items() if len(t) > headline.LIMIT]
    empty = [d for d, t in titles.items() if not t.strip()]
    ours = [d for d, t in titles.items()
            if headline.is_boilerplate_sentence(t) or headline.is_boilerplate_line(t)]
    blunt = [d for d, t in titles.items() if TELLTALE.search(t)]
    cut = [d for d, t in titles.items() if t.endswith("…")]
    print(f"{name}: over {headline.LIMIT} chars {len(long)}, empty {len(empty)}, boilerplate "
          f"(qabot's detector) {len(ours)}, tell-tale phrases {len(blunt)}, shortened with … {len(cut)}")
    if show:
        for d in sorted(set(long + empty + ours + blunt)):
            print(f"    {d}: {titles[d]!r}")


if __name__ == "__main__":
    main()
