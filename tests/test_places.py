"""Which place a question asks for by its noun: a country (or its adjective), a US state, a continent."""

from __future__ import annotations

import pytest

from qabot import places


@pytest.mark.parametrize(("question", "sentence", "named"), [
    ("which country banned rainbow toys", "Saudi Arabian officials cracked down in Riyadh.", "Saudi Arabian"),
    ("which island nations leader fled", "Sri Lanka has plunged into chaos.", "Sri Lanka"),
    ("which state voted down the amendment", "Kansas voters rejected it.", "Kansas"),
    ("which state has georgia peaches", "Georgia grows them.", "Georgia"),  # a state, not the country
    ("which continent will require one charger", "Europe will require it.", "Europe"),
])
def test_the_names_a_question_asks_for(question: str, sentence: str, named: str) -> None:
    pattern = places.asked(question)
    assert pattern is not None
    found = pattern.search(sentence)
    assert found is not None and found.group() == named


@pytest.mark.parametrize("question", [
    "which city had the biggest rent increase",  # no list of cities: any name may answer
    "where did the quake hit",
    "which state in india had floods",  # a state abroad is no US state
    "which australian state burned",
])
def test_no_list_for_other_places(question: str) -> None:
    assert places.asked(question) is None
