"""Follow-up questions on the news dev set: does the follow-up find its article, alone and with context?

    .venv/bin/python benchmarks/conversation.py [--dev /tmp/news-dev] [--index /tmp/news-dev-index]
                                                [--script benchmarks/chat_script.jsonl]

A scripted conversation: PAIRS below are (dev query id, a first question, a follow-up leaning on
it), worded here about the topic of that dev query, whose gold_docs are the right article for
both. For each pair, as the bot does it: search the first question, remember the turn, then
search the follow-up three ways, with the same `contextualize()` and `search()` the bot calls:

  alone     the follow-up as typed (what the bot did before follow-ups)
  by time   contextualize(..., is_reply=False) one minute later: context only when
            leans_on_previous() says the follow-up leans on the question
  as reply  contextualize(..., is_reply=True): the follow-up sent as a reply to the answer
  … on evidence  as the bot answers it (respond with the message as typed): the context
            kept only when the searches agree (answer.stands_alone), a reply weighed as one

Each search is as of the dev query's question_date, with the bot's settings. Reported: how many
follow-ups rank a gold article first (@1), in the first 3 articles (@3), and in the bot's reply
(its passages over the confidence floor); then the false follow-ups: each first question asked a
minute after the previous pair's, a new topic that must be searched alone.

Then changes of topic nobody wrote (shuffled_topics): the 197 chat questions in a seeded shuffle,
each following the one before it when their articles differ, which neither the rules nor the
margin were chosen on.

Honesty about tuning: PAIRS were run first with the initial rule (by time 8/18 @1), and its
misses led to revising leans_on_previous() (a sentence-final "that", thin questions naming
nothing); HELD_OUT was written before that revision and run only after it (the initial rule
scored 9/16 @1 by time on it, the revised one 10/16). The false follow-ups then showed "Which
company split its stock…?" taken for a follow-up, fixed by the "which X … its" rule; that check
is therefore seen, not held out. No article text is in this file; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import log  # noqa: E402

from qabot.answer import Reply, respond  # noqa: E402
from qabot.config import (  # noqa: E402
    Settings,
    load_settings,
)
from qabot.conversation import Turn, contextualize, leans_on_previous  # noqa: E402
from qabot.passage import Passage  # noqa: E402
from qabot.reader import Retriever  # noqa: E402
from qabot.retrieve import search  # noqa: E402

# (dev query id, first question, follow-up). The follow-ups are what a reader might ask next,
# written without regard to whether leans_on_previous() catches them (some it does not).
PAIRS = [
    ("20220610_2", "Who won the US Women's Open golf tournament?", "How much prize money did she get?"),
    ("20220708_2", "How many hot dogs did Joey Chestnut eat at the Nathan's contest?",
     "And who won the women's title?"),
    ("20220729_3", "Which airline made a deal to buy Spirit Airlines?", "How much is it paying per share?"),
    ("20220805_4", "Which team was Vin Scully the broadcaster for?", "How old was he when he died?"),
    ("20220624_7", "Which NFL star retired on Tuesday?", "How many Super Bowls did he win?"),
    ("20220701_4", "How long will Brittney Griner stay in detention in Russia?", "What is she accused of?"),
    ("20220826_3", "Who became the youngest pilot to fly solo around the world?",
     "How long did the trip take him?"),
    ("20220812_8", "Which NFL team did the owners approve the sale of?",
     "How much did the buyers pay for it?"),
    ("20220819_6", "Which basketball player became the highest paid in NBA history?",
     "How much is his new contract worth?"),
    ("20220722_7", "Which company split its stock 20-for-1?", "Why did they do that?"),
    ("20220617_7", "Which national park was flooded this week?", "When will it reopen?"),
    ("20220624_1", "How much did someone pay for a lunch with Warren Buffett?", "Where does the money go?"),
    ("20220826_8", "Why did Kia and Hyundai recall SUVs?", "How many vehicles are affected?"),
    ("20220708_9", "How long was Jerry Harris from Cheer sentenced to prison?",
     "What did he plead guilty to?"),
    ("20220610_3", "Which insect can count as a fish under California law?",
     "Why did the court decide that?"),
    ("20220812_5", "Which condiment is missing from French supermarket shelves?", "Why is there a shortage?"),
    ("20220729_6", "Which country had a 7.0 magnitude earthquake?", "How many people died?"),
    ("20220715_8", "Which movie led the US box office this week?",
     "How much did it make in its opening weekend?"),
]
# Written before the results on PAIRS led to revising leans_on_previous(), and run only after
# it: the figures on these are the fair ones.
HELD_OUT = [
    ("20220624_8", "How strong was the earthquake in Afghanistan?", "How many people were killed?"),
    ("20220701_6", "Which team won the Stanley Cup?", "Who did they beat in the final?"),
    ("20220701_9", "Which countries did NATO invite to join?", "Which country had objected?"),
    ("20220708_4", "Which head of state announced his resignation?", "Why did he resign?"),
    ("20220708_6", "Which restaurant chain redesigned its menu?", "What changed on the menu?"),
    ("20220715_3", "What did NASA's new space telescope images show?", "What is the telescope called?"),
    ("20220715_5", "Which show got the most Emmy nominations?", "How many nominations did it get?"),
    ("20220722_9", "What new menu item did KFC launch?", "Where can you buy them?"),
    ("20220729_4", "Which singer will start a Las Vegas residency?", "When do the shows start?"),
    ("20220805_8", "How many games was Deshaun Watson suspended for?", "Which team does he play for?"),
    ("20220812_4", "Which movie made Olivia Newton-John famous?", "How old was she?"),
    ("20220819_0", "What is NASA's new moon mission called?", "When is the launch?"),
    ("20220819_4", "How many baby swings were recalled?", "Which company made them?"),
    ("20220826_1", "What was found in a Texas riverbed?", "How old are they?"),
    ("20220826_9", "Which show drew 10 million viewers for its first episode?", "Which network airs it?"),
    ("20220701_8", "What record-breaking reptile was caught in Florida?", "How much did it weigh?"),
]
WAYS = ("alone", "by time", "as reply")
# … and as the bot answers them: searched with the context, kept only on evidence
# (answer.stands_alone), a reply weighed as one.
ON_EVIDENCE = ("by time, on evidence", "as reply, on evidence")


@dataclasses.dataclass
class Result:
    first: int | None  # rank of the first gold article for the first question (None: not in top k)
    ranks: dict[str, int | None]  # per way, the follow-up's
    shown: dict[str, bool]  # per way, whether the bot's reply (over the floor) has a gold article


def gold_rank(passages: list[Passage], gold: set[str], floor: float | None = None) -> int | None:
    """1-based rank of the first result whose article (or a near-duplicate folded into it) is gold
    (and scores at least `floor`, when given)."""
    for n, p in enumerate(passages, 1):
        if floor is not None and p.score < floor:
            break
        if {Path(d).stem for d in (p.doc_id, *(s.doc_id for s in p.duplicates))} & gold:
            return n
    return None


@dataclasses.dataclass
class Bench:
    """The dev index searched the way the bot searches it, as of each dev query's date."""

    retriever: Retriever
    settings: Settings
    queries: dict[str, dict[str, Any]]

    @property
    def floor(self) -> float:
        return self.settings.bot_search.floor

    def gold(self, qid: str) -> set[str]:
        return set(self.queries[qid]["gold_docs"])

    def find(self, question: str, qid: str) -> list[Passage]:
        """The bot's top articles for a question, as of the dev query's question_date."""
        return self.find_on(question, dt.date.fromisoformat(self.queries[qid]["question_date"]))

    def find_on(self, question: str, day: dt.date) -> list[Passage]:
        """The bot's top articles for a question asked on `day`."""
        s = self.settings
        options = dataclasses.replace(s.search, k=max(3, s.bot.answers))
        return search(self.retriever, question, options, floor=False, as_of=day, answers=False)

    def pair(self, qid: str, first: str, follow_up: str) -> Result:
        """The first question, then its follow-up searched each way, a minute later: on evidence
        after the bot's own reply to the first (the articles it cited, the sentence it led with),
        as the script's follow-ups are."""
        found = self.find(first, qid)
        day = dt.date.fromisoformat(self.queries[qid]["question_date"])
        _, turn = first_turn(self, first, day)
        ranks, shown = {}, {}
        for way in (*WAYS, *ON_EVIDENCE):
            replied = way.startswith("as reply")
            text = follow_up if way == "alone" else contextualize(follow_up, turn, 60.0, replied)
            if way in ON_EVIDENCE:
                passages = list(bot_reply(self, follow_up, text, turn, day, replied).results)
            else:
                passages = self.find(text, qid)
            ranks[way] = gold_rank(passages[:3], self.gold(qid))
            reply = passages[: self.settings.bot.answers]
            shown[way] = gold_rank(reply, self.gold(qid), self.floor) is not None
        log(f"{qid}: first {gold_rank(found, self.gold(qid))}, follow-up {ranks} "
            f"({'leans' if leans_on_previous(follow_up) else 'stands alone'})")
        return Result(gold_rank(found[:3], self.gold(qid)), ranks, shown)


def report(name: str, results: list[Result], pairs: list[tuple[str, str, str]]) -> None:
    """One table: per way of searching the follow-up, how often the gold article comes up."""
    n = len(results)
    print(f"\n{name}: {n} pairs; first questions gold @1 {sum(r.first == 1 for r in results)}/{n}, "
          f"@3 {sum(r.first is not None for r in results)}/{n}; "
          f"follow-ups leaning by the rule {sum(leans_on_previous(p[2]) for p in pairs)}/{n}")
    print(f"{'follow-up searched':<22}{'gold @1':>9}{'gold @3':>9}{'in reply':>10}")
    for way in (*WAYS, *ON_EVIDENCE):
        at1 = sum(r.ranks[way] == 1 for r in results)
        at3 = sum(r.ranks[way] is not None for r in results)
        print(f"{way:<22}{at1:>6}/{n}{at3:>6}/{n}{sum(r.shown[way] for r in results):>7}/{n}")


def new_topics(bench: Bench, pairs: list[tuple[str, str, str]]) -> None:
    """False follow-ups: each first question asked a minute after the one before it, on another
    topic. Context the rule adds there can only hurt."""
    alone = searched = leaning = 0
    for (_, before, _), (qid, first, _) in itertools.pairwise(pairs):
        text = contextualize(first, Turn(before, before, (), time=0.0), 60.0, is_reply=False)
        leaning += text != first
        alone += gold_rank(bench.find(first, qid)[:1], bench.gold(qid)) == 1
        searched += gold_rank(bench.find(text, qid)[:1], bench.gold(qid)) == 1
    n = len(pairs) - 1
    print(f"\nnew topic a minute after another: {leaning}/{n} taken for follow-ups; "
          f"gold @1 {alone}/{n} searched alone, {searched}/{n} as the bot searches them")


def bot_reply(bench: Bench, message: str, query: str, turn: Turn, day: dt.date,
              replied: bool = False) -> Reply:
    """The bot's reply to `message` searched as `query` after `turn` (bot.reply_for: the context
    kept only on evidence, answer.stands_alone; the previous reply's articles as the bot cites
    them; `replied`: the message replies to that reply)."""
    return respond(bench.retriever, query, bench.settings.bot_search, as_of=day, typed=message,
                   previous=turn.doc_ids[: bench.settings.bot.answers], replied=replied,
                   said=turn.said_to(message))


def as_the_bot(bench: Bench, message: str, query: str, turn: Turn,
               day: dt.date, replied: bool = False) -> tuple[list[Passage], bool]:
    """bot_reply's articles, and whether the context was kept."""
    reply = bot_reply(bench, message, query, turn, day, replied)
    return list(reply.results), reply.question != message


def first_turn(bench: Bench, question: str, day: dt.date) -> tuple[Reply, Turn]:
    """A first question as the bot answers it, and the turn a follow-up leans on."""
    reply = respond(bench.retriever, question, bench.settings.bot_search, as_of=day)
    return reply, Turn(question, question, tuple(p.doc_id for p in reply.results), time=0.0,
                       said=reply.said)


def followup_sentences(bench: Bench, path: Path) -> None:
    """The scripted follow-ups' leading sentence, as the bot chooses it (the typed words choose,
    answer.choose_for) and as it chose it before (the words searched with, the previous
    question's included): does it hold the answer, and does it repeat the sentence that answered
    the question before? Each half (A, B: alternate weeks) separately: the rule was chosen after
    seeing these figures (neither half lost), so they are seen, not held out."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    follow = [x for x in lines if x["kind"] == "followup"]
    weeks = sorted({dt.date.fromisoformat(x["question_date"]).isocalendar()[:2] for x in follow})
    half = {w: "AB"[i % 2] for i, w in enumerate(weeks)}
    rows: dict[tuple[str, str, str], list[int]] = {}
    for x in follow:
        day = dt.date.fromisoformat(x["question_date"])
        side = half[day.isocalendar()[:2]]
        first, turn = first_turn(bench, x["first"], day)
        for way in ("by time", "as reply"):
            query = contextualize(x["followup"], turn, 60.0, way == "as reply")
            now = bot_reply(bench, x["followup"], query, turn, day, way == "as reply")
            # Before: the search that won, its sentences chosen by the words it searched with.
            was = now if now.question == x["followup"] else respond(
                bench.retriever, now.question, bench.settings.bot_search, as_of=day)
            for rule, reply in (("searched words (before)", was), ("typed words (now)", now)):
                row = rows.setdefault((way, rule, side), [0, 0, 0, 0, 0])
                lead = reply.said
                row[0] += any(a.casefold() in lead.casefold() for a in x["answers"])
                row[1] += any(a.casefold() in reply.results[i].answer.casefold()
                              for a in x["answers"] for i in reply.answers)
                row[2] += bool(lead) and lead == first.said
                row[3] += not lead
                row[4] += 1
    print(f"\n{path.name}: the follow-ups' leading sentence (half A / half B)")
    print(f"{'follow-up':<10}{'sentence chosen by':<26}{'lead answers':>16}{'a lead answers':>16}"
          f"{'repeats the last':>18}{'none':>14}")
    for way in ("by time", "as reply"):
        for rule in ("searched words (before)", "typed words (now)"):
            a, b = rows[(way, rule, "A")], rows[(way, rule, "B")]
            cells = [f"{a[i]}/{a[4]} {b[i]}/{b[4]}" for i in range(4)]
            print(f"{way:<10}{rule:<26}{cells[0]:>16}{cells[1]:>16}{cells[2]:>18}{cells[3]:>14}")


def digest_followups(bench: Bench, path: Path) -> None:
    """benchmarks/digest_followups.jsonl: follow-ups on one story of a morning digest (CNN's "5
    things", many unrelated stories in one article), where the message's own words could pick a
    sentence of another story ("how old was he" → another section's "He was 82."). Written for the
    check of answer._on_subject, then used to choose its share: seen, not held out. Does the
    leading sentence hold the answer, and is the digest the first article?"""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = {way: [0, 0] for way in ("by time", "as reply")}
    for x in lines:
        day = dt.date.fromisoformat(x["question_date"])
        _, turn = first_turn(bench, x["first"], day)
        for way, row in rows.items():
            query = contextualize(x["followup"], turn, 60.0, way == "as reply")
            reply = bot_reply(bench, x["followup"], query, turn, day, way == "as reply")
            row[0] += any(a.casefold() in reply.said.casefold() for a in x["answers"])
            row[1] += bool(reply.results) and Path(reply.results[0].doc_id).stem == x["doc"]
    n = len(lines)
    print(f"\n{path.name}: {n} follow-ups on one story of a many-story digest")
    for way, (lead, first_doc) in rows.items():
        print(f"{way:<10} lead answers {lead}/{n}, the digest first {first_doc}/{n}")


def script(bench: Bench, path: Path) -> None:
    """benchmarks/chat_script.jsonl (lowercase chat, never used to choose a rule): follow-ups each
    way, changes of topic taken for follow-ups, and "latest / now" questions with and without an
    as-of day (respond(), which reads time words against the corpus's present)."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    follow = [x for x in lines if x["kind"] == "followup"]
    ways = (*WAYS, "by time, on evidence", "as reply, on evidence")
    at1 = dict.fromkeys(ways, 0)
    from_previous = dict.fromkeys(ways, 0)
    for x in follow:
        day = dt.date.fromisoformat(x["question_date"])
        # The turn as the bot remembers it: the articles its first reply cited, the sentence it
        # led with (a search's articles and no sentence until 2026-12-07; the rows on evidence
        # read the same either way then, "top from the previous reply" by time 49 → 48).
        turn = first_turn(bench, x["first"], day)[1]
        for way in ways:
            text = x["followup"] if way == "alone" else contextualize(x["followup"], turn, 60.0,
                                                                      way.startswith("as reply"))
            if way.endswith("on evidence"):
                top = as_the_bot(bench, x["followup"], text, turn, day, way.startswith("as reply"))[0][:1]
            else:
                top = bench.find_on(text, day)[:1]
            at1[way] += gold_rank(top, set(x["gold"])) == 1
            from_previous[way] += bool(top) and top[0].doc_id in turn.doc_ids[:3]
    n = len(follow)
    print(f"\n{path.name}: {n} follow-ups ({sum(not x['in_previous'] for x in follow)} answered only "
          "beyond the first question's articles)")
    print(f"{'follow-up searched':<22}{'gold @1':>9}{'top from the previous reply':>30}")
    for way in ways:
        print(f"{way:<22}{at1[way]:>6}/{n}{from_previous[way]:>27}/{n}")
    topics = [x for x in lines if x["kind"] == "topic_change"]
    taken = kept = alone = searched = on_evidence = covered = 0
    for x in topics:
        day = dt.date.fromisoformat(x["question_date"])
        found = bench.find_on(x["first"], day)
        turn = Turn(x["first"], x["first"], tuple(p.doc_id for p in found), time=0.0)
        text = contextualize(x["next"], turn, 60.0, is_reply=False)
        taken += text != x["next"]
        shown, with_context = as_the_bot(bench, x["next"], text, turn, day)
        kept += with_context
        if x["gold"]:
            covered += 1
            alone += gold_rank(bench.find_on(x["next"], day)[:1], set(x["gold"])) == 1
            searched += gold_rank(bench.find_on(text, day)[:1], set(x["gold"])) == 1
            on_evidence += gold_rank(shown[:1], set(x["gold"])) == 1
    print(f"changes of topic a minute later: taken for follow-ups by the words {taken}/{len(topics)}, "
          f"on evidence {kept}/{len(topics)} (goal 0); gold @1 {alone}/{covered} searched alone, "
          f"{searched}/{covered} by the words, {on_evidence}/{covered} on evidence")
    latest = [x for x in lines if x["kind"] == "latest"]
    options = dataclasses.replace(bench.settings.search, k=3)
    for label, dated in (("asked on its date", True), ("no as-of day (the bot on an archive)", False)):
        first = 0
        for x in latest:
            asked = dt.date.fromisoformat(x["question_date"]) if dated else None
            reply = respond(bench.retriever, x["question"], options, floor=False, as_of=asked)
            first += bool(reply.results) and Path(reply.results[0].doc_id).stem in x["gold"]
        print(f"latest / now, {label}: newest gold article first {first}/{len(latest)}")


def shuffled_topics(bench: Bench, path: Path, seed: int = 7) -> None:
    """Changes of topic nobody wrote: the chat questions (chat_questions.jsonl) in a seeded
    shuffle, each asked a minute after the one before it when their gold articles differ. How
    many the bot searches with the previous question's words (by the words; kept on evidence),
    and the next question's gold article first alone and as the bot answers it."""
    qs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(qs)
    pairs = [(a, b) for a, b in itertools.pairwise(qs) if not set(a["gold_docs"]) & set(b["gold_docs"])]
    taken = kept = alone = as_bot = 0
    for a, b in pairs:
        day = dt.date.fromisoformat(b["question_date"])
        found = bench.find_on(a["question"], day)
        turn = Turn(a["question"], a["question"], tuple(p.doc_id for p in found), time=0.0)
        text = contextualize(b["question"], turn, 60.0, is_reply=False)
        taken += text != b["question"]
        shown, with_context = as_the_bot(bench, b["question"], text, turn, day)
        kept += with_context
        alone += gold_rank(bench.find_on(b["question"], day)[:1], set(b["gold_docs"])) == 1
        as_bot += gold_rank(shown[:1], set(b["gold_docs"])) == 1
    n = len(pairs)
    print(f"\nchanges of topic from {path.name} shuffled (seed {seed}): {n} pairs; taken for follow-ups by "
          f"the words {taken}/{n}, on evidence {kept}/{n} (goal 0); gold @1 {alone}/{n} searched alone, "
          f"{as_bot}/{n} as the bot answers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=Path("/tmp/news-dev"))
    parser.add_argument("--index", type=Path, default=Path("/tmp/news-dev-index"))
    parser.add_argument("--script", type=Path, default=ROOT / "benchmarks" / "chat_script.jsonl",
                        help="the scripted chat (lowercase follow-ups, changes of topic, latest/now)")
    args = parser.parse_args()
    lines = (args.dev / "queries.jsonl").read_text().splitlines()
    settings = load_settings(seeds=args.dev / "corpus", index=args.index)
    bench = Bench(Retriever(settings.index, nprobe=settings.vectors.nprobe), settings,
                  {q["id"]: q for q in map(json.loads, lines)})
    print(f"news dev set {args.dev}, index {args.index}: mode {settings.search.mode}, "
          f"floor {bench.floor:.2f}, {settings.bot.answers} passages a reply")
    for name, pairs in (("PAIRS (seen while revising the rule)", PAIRS), ("HELD_OUT", HELD_OUT)):
        report(name, [bench.pair(*pair) for pair in pairs], pairs)
    new_topics(bench, PAIRS + HELD_OUT)
    script(bench, args.script)
    followup_sentences(bench, args.script)
    digest_followups(bench, ROOT / "benchmarks" / "digest_followups.jsonl")
    shuffled_topics(bench, ROOT / "benchmarks" / "chat_questions.jsonl")


if __name__ == "__main__":
    main()
