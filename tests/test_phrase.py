"""The answering phrase inside a sentence: a date, an amount, a span; nothing for what and why."""

from __future__ import annotations

import pytest

from qabot import sentences as s
from qabot.phrase import phrase


@pytest.mark.parametrize(("sentence", "question", "want"), [
    ("Queen Elizabeth II died Thursday at Balmoral Castle.", "when did queen elizabeth die", "Thursday"),
    ("The plant reopened on Sept. 8, 2022, after the flood.", "when did the plant reopen", "Sept. 8, 2022"),
    ("The card sold for $12.6 million at auction on Sunday.", "how much did the card sell for",
     "$12.6 million"),
    ("The Fed raised rates by three-quarters of a percentage point on Wednesday.",
     "how much did the fed raise rates", "three-quarters of a percentage point"),
    ("At least 14 people were hurt in the 2022 crash.", "how many people were hurt in 2022", "14"),
    ("Troops fought during 44 days of clashes in 2020.", "how long did the 2020 war last", "44 days"),
    ("The pause would last through September, officials said.", "how long is the pause", "through September"),
    ("The Herons, down two runs in the 2024 opener, won 7-5 on Sunday.", "what was the score", "7-5"),
    ("With the score tied 1–1 in the second period, Delgado scored.", "whats the score", "1–1"),
    # An age, not the first number: "how old" after a golf win
    ("After a final round of 71, the 26-year-old Lee won by four.", "how old is she", "26-year-old"),
    ("Walton, 77, takes over a team worth $4.65 billion.", "how old is he", "77"),
    ("The tracks, 113 million years old, lie beside 20-year-old trees.", "how old are the tracks",
     "113 million years old"),
    # … or as long ago as that (millions of years: "two years ago" tells no age of a person)
    ("Dinosaur tracks from around 113 million years ago have been revealed.", "how old are they",
     "113 million years ago"),
    ("Abe died at 67 after being shot in Nara.", "how old was abe", "died at 67"),
    ("She was 84.", "how old was she", "84"),
    # A sum of money when one is asked, not the first number: "how much did they pay"
    ("A jury of five men and two women awarded him $10.35 million.", "how much does she have to pay",
     "$10.35 million"),
    ("The 2 teams sold it for 15 million dollars in 2021.", "how much was it sold for", "15 million dollars"),
    # A count of the unit asked, not the first number (nor an age: "the 37-year-old")
    ("The 37-year-old agreed to a two-year, $97.1 million extension.", "for how many years", "two-year"),
    ("Harris, 22, was sentenced to 12 years in prison.", "how many years did he get", "12 years"),
    ("Over 3 hours he was silent for 187 minutes.", "how many minutes was he silent", "187 minutes"),
    ("The 2 sides agreed he would miss 11 regular-season games.", "how many games is he suspended",
     "11 regular-season games"),
])
def test_the_phrase_of_the_kind_asked(sentence: str, question: str, want: str) -> None:
    span = phrase(sentence, s.question_kind(question), question)
    assert span is not None and sentence[span[0] : span[1]] == want


def test_what_the_question_already_says_is_never_the_phrase() -> None:
    sentence = "In 2022 the club won 3 titles."
    span = phrase(sentence, s.NUMBER, "how many titles did the club win in 2022")
    assert span is not None and sentence[span[0] : span[1]] == "3"
    assert phrase("It happened on Monday.", s.TIME, "what happened on monday") is None


@pytest.mark.parametrize(("sentence", "question"), [
    ("The recall is due to battery defects.", "why was the car recalled"),
    ("The court ruled that bees are fish under the law.", "what did the court rule about bees"),
    # the name asked about is no answer, nor the outlet or a dateline in front
    ("CNN — Minjee Lee won on Sunday.", "who is minjee lee"),
    ("BOGOTA, Colombia (AP) — the talks ended with no deal.", "where did the talks happen"),
    # "which country": a country or nothing (Riyadh is a city)
    ("Officials have cracked down on toys in Riyadh.", "which country banned rainbow toys"),
    # A score is "7-5", not an amount: "two goals", a season "2021-22", a phone number are none
    ("Delgado scored two goals in the 2021-22 season; call 555-1234.", "what was the score"),
    # an age is no score, no count: "71" and "13-under" say nothing of how old she is
    ("Lee closed with an even-par 71 to finish at 13-under 271.", "how old is she"),
    ("The pool was 82% full, he was 5.5 feet from it.", "how old was he"),
    ("A jury of five men and two women found for Depp.", "how much does she have to pay him"),
    ("The 74th Emmy nominations were announced.", "how many nominations did it get"),  # an ordinal
])
def test_no_phrase_where_it_would_be_a_guess(sentence: str, question: str) -> None:
    assert phrase(sentence, s.question_kind(question), question) is None


@pytest.mark.parametrize(("sentence", "question", "want"), [
    ("On Sunday, Minjee Lee won the US Women's Open by four shots.", "who won the us womens open",
     "Minjee Lee"),
    # a person's name over the event's, the party's, the organisation a title follows
    ("CNN — Four-time Super Bowl champion Rob Gronkowski announced his retirement Tuesday.",
     "which nfl star retired tuesday", "Rob Gronkowski"),
    ("Australian Labor Party leader Anthony Albanese claimed victory Saturday.",
     "who won the australian election", "Anthony Albanese"),
    ("The Denver Broncos' new owners have tabbed NFL International CEO Damani Leech as president.",
     "who is the broncos new team president", "Damani Leech"),
    ("Jane Campion and Will Smith won on Sunday.", "who won best director", "Jane Campion"),  # not "… and …"
    ("Boris Johnson's tenure as Britain's Prime Minister came to an end.", "who succeeded boris johnson",
     None),  # a title is nobody's name
    # a company when that is all there is: "who" asks for organisations too
    ("New York CNN Business — JetBlue Airways on Thursday announced it would purchase Spirit Airlines.",
     "who is buying spirit airlines?", "JetBlue Airways"),
    # "which country / state": the first one named that the question lacks, not the city before it
    ("Colombo, Sri Lanka CNN — Sri Lanka is bankrupt, the prime minister said in Colombo.",
     "which country says its bankrupt", "Sri Lanka"),
    ("Washington (CNN) Kansas on Tuesday will become the first state to let voters weigh in.",
     "which state voted down the abortion amendment", "Kansas"),
    ("Sri Lanka has plunged into chaos and its president has fled to Singapore.",
     "which island nations leader fled", "Sri Lanka"),
    ("Saudi Arabian officials have cracked down on toys in Riyadh.", "which country banned rainbow toys",
     "Saudi Arabian"),  # the country's adjective names it
    # "where": a place after in/at/to…, with its state; not the person the sentence starts with,
    # nor a capitalised opener
    ("Model Chrissy Teigen, vacationing in Bali with John Legend, fled to the streets.",
     "where was chrissy teigen during the quake", "Bali"),
    ("The FBI searched Donald Trump's Mar-a-Lago resort in Palm Beach, Florida, on Monday.",
     "where is mar-a-lago", "Palm Beach, Florida"),
    ("Police in Coeur d'Alene, Idaho, arrested 31 men.", "where was the pride event", "Coeur d'Alene, Idaho"),
    ("The Oak Fire ignited near Yosemite National Park Friday.", "where was the oak fire",
     "Yosemite National Park"),  # not the day after it
    ("Separately, Dr. Anthony Fauci announced he is leaving.", "who is leaving the cdc", "Anthony Fauci"),
    ("Hearing anguished calls as he left Mass in Uvalde, Biden said little.", "where is the town",
     "Uvalde"),  # a participle starts no name
    ("Just imagine one cable: European regulators say phones will need it.",
     "where will phones need one charger", "European"),
])
def test_the_name_that_answers(sentence: str, question: str, want: str | None) -> None:
    span = phrase(sentence, s.question_kind(question), question)
    assert (sentence[span[0] : span[1]] if span else None) == want
