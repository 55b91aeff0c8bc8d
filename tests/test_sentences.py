"""The answering-sentence features, on hand-made sentences (no model, no index)."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest

from qabot import sentences as s
from qabot.bm25 import ENGLISH_STOPWORDS, tokenize

# features() with the English stop words and stemmer, as the default settings use them
english_features = partial(s.features, stopwords=ENGLISH_STOPWORDS, stemmer="english")


@pytest.mark.parametrize(("question", "kind"), [
    ("Which golfer won the 2022 US Women's Open?", s.PERSON),
    ("Who replaced the CEO?", s.PERSON),
    ("How many people were hurt in the crash?", s.NUMBER),
    ("How much did the ticket cost?", s.NUMBER),
    ("When did the plant reopen?", s.TIME),
    ("What year did the company go public?", s.TIME),
    ("Where did the storm make landfall?", s.PLACE),
    ("Which country hosted the summit?", s.PLACE),
    ("which peru town was closest to the quake", s.PLACE),  # words between, as "which … golfer"
    ("Which measure did lawmakers leave out?", s.THING),  # "lawmakers" is no "which … member"
    ("The GOP's loudest critic lost her seat. What is her name?", s.PERSON),
    ("What was the record average price for a gallon of gas?", s.NUMBER),  # an amount by its noun
    ("whats the death toll", s.NUMBER),
    ("Why was the facility closed for several months?", s.REASON),
    ("why is the chevy bolt being recalled", s.REASON),
    ("how long did the 2020 war last", s.DURATION),
    ("How long will the pause last?", s.DURATION),
    ("What did the court rule about bees?", s.THING),
    ("whos replacing him", s.PERSON),  # chat spelling
    ("who's the runner-up", s.PERSON),
    # "when" after another question word is its clause: that word asks
    ("where was he standing when it hit", s.PLACE),
    ("what did the council say when it voted", s.THING),
    ("who was mayor when the bridge fell", s.PERSON),
    ("so when is opening day", s.TIME),
    ("what year did the bridge fall", s.TIME),
    # "the who" is the World Health Organization, typed in lowercase: no "who" question
    ("which virus might the who call an emergency", s.THING),
    ("who is the who chief", s.PERSON),
])
def test_question_kind(question: str, kind: str) -> None:
    assert s.question_kind(question) == kind


def test_a_sentence_holds_the_kind_only_with_something_new() -> None:
    q = "Which golfer won the 2022 US Women's Open?"
    assert s.holds_kind("Minjee Lee won the US Women's Open on Sunday.", s.PERSON, q)
    assert not s.holds_kind("The golfer won the US Women's Open in style.", s.PERSON, q)
    assert s.holds_kind("It reopened on June 4 after months.", s.TIME, "When did the plant reopen?")
    assert not s.holds_kind("The plant reopened after months.", s.TIME, "When did the plant reopen?")
    assert s.holds_kind("His resignation takes effect in 14 days.", s.TIME, "when does it take effect")
    # A year that names an event dates nothing; after "in" it does, whatever follows
    when = "when is the grammys"
    assert not s.holds_kind("The 2022 Grammys might also witness history.", s.TIME, when)
    assert not s.holds_kind("Here's what to know going into this year's Grammys.", s.TIME, when)
    assert s.holds_kind("Sunday's show airs live on CBS.", s.TIME, when)
    assert s.holds_kind("The show moved to Las Vegas in 2022.", s.TIME, when)
    assert s.holds_kind("In 2022 Vegas hosted the show.", s.TIME, when)
    assert s.holds_kind("Troops fought during 44 days of clashes.", s.DURATION, "how long did the war last")
    assert s.holds_kind("The pause would last through September.", s.DURATION, "how long is the pause")
    assert not s.holds_kind("The pause was proposed by the president.", s.DURATION, "how long is the pause")
    assert s.holds_kind("It was recalled because of battery defects.", s.REASON, "why was it recalled")
    assert not s.holds_kind("The recall affects 141,000 cars.", s.REASON, "why was it recalled")
    # "which country / state": a country or state named, not just any name (a capital, a leader)
    q = "which country declared victory over covid"
    assert s.holds_kind("Kim said North Korea must keep its barrier.", s.PLACE, q)
    assert s.holds_kind("Saudi Arabian officials cracked down on toys.", s.PLACE, "which country banned toys")
    assert not s.holds_kind("Kim said in Pyongyang that the fight was won.", s.PLACE, q)
    assert not s.holds_kind("BOGOTA, Colombia (AP) — Mayor Lopez spoke in Bogota.", s.PLACE,
                            "which country elected him")  # the dateline's country says where it was filed
    assert s.holds_kind("Officials in Pyongyang declared victory.", s.PLACE, "which city declared victory")
    assert s.holds_kind("Dry weather has led to a drought.", s.REASON, "why were fireworks canceled")
    assert s.holds_kind("The resignations were sparked by revelations about a minister.", s.REASON,
                        "why did he quit")
    assert s.holds_kind("At least 14 people were hurt.", s.NUMBER, "How many people were hurt?")
    # a number the question already has is not an answer to "how many"
    assert not s.holds_kind("The 2022 season was long.", s.NUMBER, "How many games in 2022?")
    # "hundreds of homes" counts nothing: "how many" wants a number
    assert not s.holds_kind("The fire destroyed hundreds of homes.", s.NUMBER, "how many homes burned")
    assert s.holds_kind("About 600 homes were destroyed.", s.NUMBER, "how many homes burned")
    # an ordinal, a year or a name's number counts nothing
    for no_count in ("The 74th Emmy nominations came out in 2022.", "Covid-19 hit the F-35 plant."):
        assert not s.holds_kind(no_count, s.NUMBER, "how many nominations did it get")
    # "how old" wants an age: a golf score is a number but says nothing of it
    assert s.holds_kind("The 26-year-old Lee never trailed.", s.NUMBER, "how old is she")
    assert not s.holds_kind("Lee closed with a 71 to finish at 13-under.", s.NUMBER, "how old is she")
    assert not s.holds_kind("He retired two years ago in Denver.", s.NUMBER, "how old is he")
    # "how much did they pay" wants money; a count of jurors is none ("how much did it rise" may
    # be a share: only paying, costing, selling… ask for money)
    assert s.holds_kind("JetBlue will pay $33.50 a share.", s.NUMBER, "how much did they pay")
    assert not s.holds_kind("A jury of five men and two women ruled.", s.NUMBER, "how much did she pay")
    assert s.holds_kind("Prices rose 9.1% in June.", s.NUMBER, "how much did prices rise")
    # "how many years" wants a count of years: the deal's sum and an age are none
    assert s.holds_kind("He agreed to a five-year extension.", s.NUMBER, "how many years")
    assert not s.holds_kind("The 37-year-old will make $46.7 million.", s.NUMBER, "how many years")


def test_a_superlative_question_wants_a_superlative_answer() -> None:
    """"Which state has the priciest gas?": naming a state is not saying which is most."""
    q = "which state has the priciest gas"
    assert not s.holds_kind("Drivers in Texas and Ohio paid less this week.", s.PLACE, q)
    assert s.holds_kind("In California, which has the highest average, gas costs $5.90.", s.PLACE, q)
    assert s.holds_kind("Drivers in Texas paid less this week.", s.PLACE, "which state cut gas prices")
    # "most" is a superlative after "the", not in "most Americans"
    assert not s.holds_kind("Most drivers in Texas and Ohio paid less.", s.PLACE, q)
    assert s.holds_kind("Drivers in Texas paid the most this week.", s.PLACE, "which state paid most")


@pytest.mark.parametrize("sentence", [
    "Is Sue Bird retiring?",
    "How did this start?\u201d",
    "Sign up for our morning newsletter to get the news first.",
    "Updated 4:52 p.m. ET, Thu August 21, 2019",
    "Photo: Getty Images",
    "Read more.",
    "That's up slightly from 65% earlier this year.",  # points at the sentence before
    "This is the second time the plant has closed.",
])
def test_questions_captions_and_boilerplate_are_never_answers(sentence: str) -> None:
    assert not s.usable(sentence)
    f = s.features(sentence, "Is Sue Bird retiring?", {"sue": 5.0, "bird": 5.0, "retir": 4.0},
                   s.THING, stopwords=ENGLISH_STOPWORDS, stemmer="english")
    assert f.score(s.Weights()) == -1.0


def test_rarer_shared_words_count_more() -> None:
    q = "Which airline agreed to buy Spirit?"
    terms = {t: 1.0 for t in tokenize(q, ENGLISH_STOPWORDS, "english")}
    terms["spirit"] = 6.0  # a rare name outweighs the common words
    rare = english_features("JetBlue will buy Spirit for $3.8 billion, the carriers said.", q, terms, s.THING)
    common = english_features("Every airline agreed that prices would rise again.", q, terms, s.THING)
    assert rare.overlap > common.overlap
    assert rare.score(s.Weights()) > common.score(s.Weights())


def test_lead_novelty_and_best() -> None:
    terms = {"storm": 3.0}
    early = english_features("The storm hit Florida on Monday night.", "storm?", terms, s.THING, offset=10)
    late = english_features("The storm hit Florida on Monday night.", "storm?", terms, s.THING, offset=5000)
    assert early.lead == 1.0 and late.lead == 0.0 and 0 < early.novelty < 1
    assert s.best([0.2, 0.7, 0.5], floor=0.0) == 1
    assert s.best([0.2, 0.3], floor=0.5) is None  # nothing good enough: emphasise nothing
    assert s.best([-1.0], floor=-5) is None and s.best([], 0.0) is None


def test_best_asks_usable_from_the_top_down_and_only_of_those_that_could_win() -> None:
    asked: list[int] = []

    def usable(i: int) -> bool:
        asked.append(i)
        return i != 1  # the best-scoring sentence is a caption

    assert s.best([0.9, 1.5, 0.2, 1.1], floor=0.5, usable=usable) == 3
    assert asked == [1, 3]  # neither 0 nor 2 was looked at
    assert s.best([0.4, 1.5], floor=0.5, usable=usable) is None  # the usable one is under the floor
    assert s.best([0.8, 0.8], floor=0.5) == 0  # ties: the earlier sentence, as max() chose


def test_unchecked_features_score_alike_and_leave_usable_to_the_caller() -> None:
    caption = "Hide Caption 3 of 18 Photos: Fans celebrate the Avalanche win in Denver on Sunday."
    kw = dict(terms={"avalanch": 2.0}, kind=s.PERSON, stopwords=frozenset(), stemmer="english")
    checked = s.features(caption, "who won", **kw)  # type: ignore[arg-type]
    unchecked = s.features(caption, "who won", check=False, **kw)  # type: ignore[arg-type]
    assert not checked.usable and unchecked.usable
    assert dataclasses.replace(checked, usable=True) == unchecked


def test_an_irregular_past_matches_its_verb() -> None:
    """"who won the cup" is answered by "… to win the Stanley Cup": the stemmer leaves "won" and
    "win" apart, the answer layer does not."""
    terms = {"won": 1.0, "stanley": 2.0, "cup": 1.5}
    question = "who won the stanley cup"
    feats = partial(s.features, question=question, terms=terms, kind=s.PERSON,
                    stopwords=frozenset({"the", "to"}), stemmer="english")
    win = feats("The Avalanche beat the Lightning to win the Stanley Cup.")
    won = feats("The Lightning won the Stanley Cup twice.")
    assert win.overlap == won.overlap == 1.0
    assert feats("The Avalanche lifted the Stanley Cup.").overlap == 3.5 / 4.5


def test_a_sentence_naming_its_subject_is_usable_even_with_that_inside() -> None:
    assert s.usable("The jackpot is $1.1 billion, and that's the second-largest prize ever.")
    assert s.usable("Thatcher's old school is where the summit opened on Monday.")  # not "That's"


def test_a_datelines_place_is_no_answer_to_where() -> None:
    """"LIMA, Peru (AP) —" says where the story was filed: for "which town…" it names nothing."""
    q = "which norland town was closest to the quake"
    terms = {"quak": 3.0, "town": 2.0, "closest": 3.0}
    filed = english_features("PORT AMSEL, Norland (AP) — An offshore quake shook the coast overnight.",
                             q, terms, s.question_kind(q))
    town = english_features("The quake cracked walls in the nearest town, Vell, its mayor said.",
                            q, terms, s.question_kind(q))
    assert filed.names == 0.0 and filed.kind == 0.0
    assert town.names > 0.0 and town.kind == 1.0
    who = english_features("PORT AMSEL, Norland (AP) — An offshore quake shook the coast overnight.",
                           "who felt the quake", terms, s.PERSON)
    assert who.names > 0.0  # only "where" leaves the dateline out


def test_a_superlative_question_weighs_the_superlative_more() -> None:
    """"which state has the priciest gas": the lead sentence naming states but no "highest" had
    outscored the one that says which; for such a question the kind counts `superlative` times."""
    q = "which state has the priciest gas"
    assert s.asks_superlative(q, s.question_kind(q)) and not s.asks_superlative("which state voted", s.PLACE)
    assert not s.asks_superlative("how many people died in the worst storm", s.NUMBER)
    terms = {"state": 2.0, "priciest": 6.0, "ga": 3.0}
    lead = english_features("Drivers in Texas and Ohio paid less for gas at most stations this week.", q,
                            terms, s.PLACE, offset=0, cosine=0.5)
    says = english_features("In California, which has the highest average, gas costs $5.90.", q,
                            terms, s.PLACE, offset=2000, cosine=0.5)
    w = s.Weights()
    assert lead.kind == 0.0 and says.kind == 1.0
    assert lead.score(w) > says.score(w)  # the lead and its names win on plain weights …
    heavier = dataclasses.replace(w, kind=w.kind * w.superlative)
    assert says.score(heavier) > lead.score(heavier)  # … not once the superlative counts more
