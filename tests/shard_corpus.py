"""A small news corpus committed in several segments, for the sharded-serving tests.

Generated, not hand-written, so it is big enough to spread over shards (36 articles, ~90
passages) and varied enough that BM25's document frequencies differ between segments: each
batch is about other topics, as news of different months is. One story is syndicated twice
(a near duplicate in another batch), so the walk folds articles from different shards.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from pathlib import Path

from qabot import format as fmt
from qabot.answer import respond
from qabot.config import PathSettings, SearchOptions, SegmentSettings, Settings
from qabot.reader import Retriever
from tests.conftest import link_encoder, make_seeds

TOPICS = [
    ("harbour", "The port authority in {place} approved a new container terminal worth {n} million euros."),
    ("drought", "Farmers around {place} reported {n} wells ran dry after the longest drought in decades."),
    ("election", "Voters in {place} elected a mayor who promised {n} new buses and cheaper tram tickets."),
    ("vaccine", "Clinics in {place} gave {n} thousand doses of the new measles vaccine in one week."),
    ("bridge", "Engineers closed the old bridge in {place} after finding {n} cracked steel cables."),
    ("festival", "The jazz festival in {place} sold {n} thousand tickets, a record for the event."),
    ("wildfire", "Firefighters near {place} contained a wildfire that burned {n} hectares of pine forest."),
    ("strike", "Rail workers in {place} went on strike for {n} hours over pay and night shifts."),
    ("satellite", "A weather satellite built in {place} sent its first images after {n} days in orbit."),
    ("museum", "The city museum of {place} returned {n} bronze statues to their country of origin."),
    ("flood", "Heavy rain flooded {n} streets in {place} and the river rose above its banks."),
    ("startup", "A battery startup from {place} raised {n} million dollars to build a new factory."),
]
PLACES = ["Lisbon", "Gdansk", "Valencia", "Tampere", "Porto", "Rijeka", "Bergen", "Cluj", "Brno"]
FILLER = [
    "Officials said more details would follow in the coming weeks.",
    "Residents interviewed on Tuesday were divided about what it would mean for them.",
    "The regional government has not yet commented on the figures.",
    "Similar plans elsewhere took several years to complete.",
    "Critics argued that the money could have been spent on schools and hospitals instead.",
    "Local newspapers had reported on the issue since the spring.",
]
SYNDICATED = ("Scientists in Bergen counted 318 humpback whales feeding in the fjord this winter, the "
              "largest number since records began.\nThe marine institute said warmer currents brought "
              "herring closer to the coast.\n")


def article(rng: random.Random, topic: int, day: dt.date) -> str:
    """One article: a headline-like first sentence on the topic, then a few sentences."""
    name, lead = TOPICS[topic]
    place = rng.choice(PLACES)
    body = [lead.format(place=place, n=rng.randint(3, 900))]
    for _ in range(rng.randint(4, 9)):
        body.append(rng.choice(FILLER) if rng.random() < 0.5 else
                    TOPICS[topic][1].format(place=rng.choice(PLACES), n=rng.randint(3, 900)))
    return f" date {day.isoformat()} " + "\n".join(body) + "\n"


def batches(seed: int = 7) -> list[dict[str, str]]:
    """Three batches of articles (file name -> text), each mostly on its own topics and dates."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for b in range(3):
        files: dict[str, str] = {}
        for i in range(12):
            topic = (b * 4 + i % 4) if i < 10 else rng.randrange(len(TOPICS))
            day = dt.date(2023, 1 + b * 4, 1) + dt.timedelta(days=rng.randint(0, 100))
            files[f"b{b}_{i:02d}.txt"] = article(rng, topic, day)
        out.append(files)
    out[0]["b0_whales.txt"] = " date 2023-02-10 " + SYNDICATED
    out[2]["b2_whales_copy.txt"] = " date 2023-10-02 " + SYNDICATED.replace("this winter", "this year")
    return out


QUESTIONS = [
    "How many humpback whales were counted in the fjord?",
    "Which bridge was closed after cracked cables were found?",
    "how many wells ran dry in the drought",
    "Who promised new buses and cheaper tram tickets?",
    "jazz festival record tickets",
    "What did the battery startup raise money for?",
    "Which road did Azerbaijan propose to help Armenian residents in Karabakh?",
    "rail strike pay night shifts",
]


def build(root: Path, encoder_cache: Path) -> Settings:
    """The corpus indexed in three commits (three segments), plus the shipped and fixture seeds."""
    from qabot.indexer import run_index

    seeds = make_seeds(root / "seeds")
    settings = Settings(paths=PathSettings(seeds=seeds, index=root / "embeddings"),
                        segments=SegmentSettings(max_count=8))
    link_encoder(encoder_cache, settings.index)
    for files in batches():
        for name, text in files.items():
            (seeds / name).write_text(text, encoding="utf-8")
        run_index(settings, log=lambda msg: None)
    return settings


def copy(settings: Settings, dest: Path) -> Settings:
    """A copy of an indexed corpus (seeds and index) to commit to."""
    import shutil

    shutil.copytree(settings.seeds, dest / "seeds")
    shutil.copytree(settings.index, dest / "embeddings")
    copied = replace(settings, paths=PathSettings(seeds=dest / "seeds", index=dest / "embeddings"))
    return copied


AS_OF = "2026-12-01"  # the day every sharded-serving test asks on


def local_json(settings: Settings, question: str, mode: str) -> str:
    """What one process answers (`qabot ask --json`), for a served reply to equal."""
    options = replace(SearchOptions(), mode=mode)
    return fmt.to_json(respond(Retriever.for_settings(settings), question, options,
                               as_of=dt.date.fromisoformat(AS_OF)))
