"""Page furniture is never an answer: captions, credits, gallery and live-page lines, teasers."""

from __future__ import annotations

import pytest

from qabot.furniture import is_credit, is_furniture
from qabot.sentences import is_headline, usable


@pytest.mark.parametrize("line", [
    "Hide Caption 3 of 12 Photos: Dana Welk, Norland's new prime minister Welk greets supporters.",
    "In pictures: Dana Welk, Norland's new prime minister",
    "Photos: Amazing pictures of the northern lights over Port Amsel",
    "Editor's note: This page recaps the news from Norland on Sunday, Feb. 27.",
    "Follow here for the latest updates on the new Norland government.",
    "LIVE UPDATES: Norland votes in a snap election as polls close early",
    "Opinion: Norland's snap election was a mistake for everyone involved",
    "Watch: the moment the new prime minister arrived at parliament",
    "Jane Doe/AFP/Getty Images Supporters wave flags outside the parliament on Monday.",
    "A protester holds a sign outside the parliament in Port Amsel. (AP Photo/Jane Doe)",
    "Here's what you need to know to Get Up to Speed and On with Your Day.",
    "JUST WATCHED Welk sworn in as prime minister Replay More Videos ...",
    "MUST WATCH Welk sworn in as prime minister 02:14",
    "Video Ad Feedback 01:15 - Source: CNN See the floods that closed the Port Amsel ferry",
])
def test_furniture_anywhere(line: str) -> None:
    assert is_furniture(line) and not usable(line)


def test_a_dated_caption_alone_on_its_line_is_furniture_but_a_dated_story_sentence_is_not() -> None:
    caption = ("Supporters of the Harbour Party wave flags outside the parliament in Port Amsel "
               "on March 4, 2024.")
    assert is_furniture(caption, alone=True) and not is_furniture(caption, alone=False)
    story = "The party said it would hold its first cabinet meeting in Port Amsel on March 4, 2024."
    assert not is_furniture(story, alone=True)  # a verb of telling: the story's own words
    shelf = "Baby formula is displayed on the shelves of a grocery store in Carmel, Ind., Tuesday."
    assert is_furniture(shelf, alone=True) and not is_furniture(shelf, alone=False)  # what a picture shows


@pytest.mark.parametrize("line", [
    "Dana Welk became Norland's prime minister on Tuesday, a day after the snap election.",
    "Watchdogs said the vote was fair, and turnout reached 71%.",  # "watch" inside a word
    "The photos showed crowds in the capital until late at night on Tuesday.",
    "Analysts expect the new government to last: the coalition holds 88 seats.",
    "Critics called the debate a must watch for anyone who just watched the first one.",
])
def test_story_sentences_are_not_furniture(line: str) -> None:
    assert not is_furniture(line, alone=True) and usable(line, alone=True)


def test_the_headline_line_is_not_an_answer_even_cut_short() -> None:
    title = "Dana Welk sworn in as Norland prime minister after snap election"
    assert is_headline(title, title) and not usable(title, title=title)
    assert is_headline(title + " in March", "Dana Welk sworn in as Norland prime…")
    assert not is_headline("Dana Welk became prime minister on Tuesday after the election.", title)
    assert not is_headline("Welk won.", "Welk")  # a title too short to tell by


@pytest.mark.parametrize(("rest", "credit"), [
    (" Jonathan Ernst/Reuters", True),
    (" National Park Service/AP", True),
    (" Jane Doe/AFP via Getty Images", True),
    (" He said so.", False),
    (" The AP/NORC poll found most agree.", False),
    ("", False),
])
def test_a_sentence_with_a_photo_credit_after_it_on_its_line_is_a_caption(rest: str, credit: bool) -> None:
    assert is_credit(rest) is credit
    caption = "Dana Welk greets supporters outside the parliament."
    assert usable(caption) and usable(caption, credited=credit) is not credit


@pytest.mark.parametrize(("line", "caption"), [
    ("A firefighter sprays a burning roof on Harbour Street in Port Amsel on Friday.", True),
    ("Dana Welk greets supporters at the Quell ferry terminal in Port Amsel, Norland, on May 21.", True),
    ("Waves crash against the sea wall near Quell as the storm hits the coast on Saturday.", True),
    ("Children near their flooded home in the Kelby district of Norland on March 2.", True),
    # a one-sentence paragraph of the story: what happened, in the past
    ("Dana Welk signed the ferry bill in Port Amsel on Friday.", False),
    ("Welk took the oath at the parliament in Port Amsel on Monday.", False),
    # what will happen, and a line with no place
    ("If all goes well, she'll land at an airport in Port Amsel on Wednesday.", False),
    ("Most ferry sailings are on Sunday, but the Quell crossing is on Saturday.", False),
])
def test_a_caption_without_its_year_is_furniture_alone_on_its_line(line: str, caption: bool) -> None:
    assert is_furniture(line, alone=True) is caption
    assert not is_furniture(line, alone=False)  # inside a paragraph it is the story's
