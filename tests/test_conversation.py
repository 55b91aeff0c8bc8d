"""Follow-ups: which messages lean on the previous question, the query searched for them, and the
bounded per-chat memory. Pure logic; the bot end to end is in tests/test_bot.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qabot.conversation import (
    FOLLOW_UP_SECONDS,
    MAX_CONTEXT_WORDS,
    MAX_QUERY_CHARS,
    Memory,
    Turn,
    content_words,
    contextualize,
    leans_on_previous,
    refers_back,
)

FIRST = "Who set the home run record for the Harbor City Herons?"
EARLIER = Turn(question=FIRST, query=FIRST, doc_ids=("baseball.txt",), time=1000.0)


@pytest.mark.parametrize("message", [
    "How many did he hit?",  # a pronoun and no name to refer to
    "and when did that happen?",  # the opening, and "that" pointed at
    "And the price?",
    "what about JetBlue?",  # names something, but asks about it *instead of* the last subject
    "How about the Giants?",
    "What else did she say?",
    "Why?",
    "when?",
    "Who won?",  # very short, names nothing
    "How much was that deal worth?",
    "What happened there?",
    "Did it pass?",
    "How did they vote?",
    "What was his salary?",
    "how old is she",
    "That's all?",
    "Since when",
    "Where was this?",
    "Why did the court decide that?",  # a sentence-final "that" is a thing pointed at
    "Where does the money go?",  # names nothing; "the money" is pinned to nothing in the message
    "How many people died?",  # counts something, names nothing
    "Why is there a shortage?",  # one content word
    "Which network airs it?",  # a "which" question, but "it" is not its subject's
    "Which team did they beat in the final?",
    "What is his salary?",  # "what is" asks about no thing of its own
    "where is the 2025 one",  # "one" stands for the noun said before
    "which one is cheaper",
    "who won the last one",
    "what did china do after",  # "after" what was said before
])
def test_messages_leaning_on_the_previous_question(message: str) -> None:
    assert leans_on_previous(message)


@pytest.mark.parametrize("message", [
    "Who won the 2022 US Women's Open?",
    "Which airline agreed to buy Spirit Airlines?",
    "Why did the baby formula plant close?",
    "What did Aaron Judge say he would do?",  # "he" has a name before it
    "Which company said that it would buy Twitter?",  # "that" after "said" is a conjunction
    "Is there a vaccine for monkeypox or smallpox?",  # existential "there"
    "There were 40 storms in the Atlantic last year, which was the worst?",
    "What is the inflation rate this year?",  # "this year" is a time, not a pointer
    "Who will NASA send to the Moon?",
    "JetBlue shares?",  # short, but names its subject (inner capital)
    "How much did the storm cost Florida?",
    "Is there a vaccine for monkeypox?",
    "How do vaccines work?",
    "Which head of state announced his resignation?",  # "his": the head of state's
    "Which restaurant chain redesigned its menu?",
    "What team fired their coach?",
    "Was anyone on the Vesta crew hurt, or was no one on board the rocket?",  # "no one": nobody
    "Which of the Herons pitchers threw the most innings in game one of the series?",  # a number
    "Is one of the Coastal Airways pilots suing Skyline Air?",
])
def test_messages_with_their_own_subject_stand_alone(message: str) -> None:
    assert not leans_on_previous(message)


def test_a_capital_at_a_sentence_start_is_not_a_name() -> None:
    assert leans_on_previous("Really. He said that?")  # "He" starts a sentence: no name before it
    assert not leans_on_previous("Did Biden say he would run?")


def test_content_words_drop_question_and_function_words_once_each() -> None:
    assert content_words(FIRST) == ["set", "home", "run", "record", "Harbor", "City", "Herons"]
    assert content_words("How many did he hit? He hit HIT") == ["hit"]
    assert content_words("Why?") == []
    assert content_words("is anyone hurt") == ["hurt"]  # no one in particular says no subject


def test_a_leaning_follow_up_borrows_the_previous_content_words_after_its_own() -> None:
    query = contextualize("How many did he hit?", EARLIER, now=1060.0, is_reply=False)
    assert query == "How many did he hit? (set home run record Harbor City Herons)"


def test_words_the_follow_up_already_has_are_not_borrowed_again() -> None:
    query = contextualize("And the home run record before him?", EARLIER, 1060.0, is_reply=False)
    assert query == "And the home run record before him? (set Harbor City Herons)"


def test_a_message_with_its_own_subject_is_searched_alone() -> None:
    message = "Which airline agreed to buy Coastal Airways?"
    assert contextualize(message, EARLIER, 1060.0, is_reply=False) == message


def test_no_previous_turn_means_the_message_alone() -> None:
    assert contextualize("How many did he hit?", None, 0.0, is_reply=True) == "How many did he hit?"


def test_a_follow_up_after_ten_minutes_starts_afresh_unless_it_is_a_reply() -> None:
    late = EARLIER.time + FOLLOW_UP_SECONDS + 1
    just_in_time = EARLIER.time + FOLLOW_UP_SECONDS
    assert contextualize("How many did he hit?", EARLIER, late, is_reply=False) == "How many did he hit?"
    assert contextualize("How many did he hit?", EARLIER, just_in_time, is_reply=False) != (
        "How many did he hit?")
    assert "Herons" in contextualize("How many did he hit?", EARLIER, late + 86400, is_reply=True)


def test_a_reply_to_an_answer_always_uses_its_context() -> None:
    """Replying to the bot's answer says "about this" even without a pronoun."""
    query = contextualize("Which team did the record holder play for?", EARLIER, 5000.0, is_reply=True)
    assert query.startswith("Which team did the record holder play for? (") and "Harbor" in query


def test_a_chain_of_follow_ups_keeps_the_subject_but_does_not_snowball() -> None:
    turn = EARLIER
    second = contextualize("And in 2023?", turn, turn.time + 10, is_reply=False)
    turn = Turn("And in 2023?", second, (), turn.time + 10)
    third = contextualize("what about his salary?", turn, turn.time + 10, is_reply=False)
    assert third == "what about his salary? (set home run record Harbor City Herons 2023)"
    for n in range(50):
        message = f"and what about season{n}?"
        query = contextualize(message, turn, turn.time + 10, is_reply=False)
        assert query.startswith(message) and "Herons" in query  # the first question's subject
        turn = Turn(message, query, (), turn.time + 10)
        borrowed = query[len(message):]
        assert len(borrowed.split()) <= MAX_CONTEXT_WORDS


@given(message=st.text(min_size=1, max_size=MAX_QUERY_CHARS), previous=st.text(max_size=3000),
       reply=st.booleans())
def test_the_query_starts_with_the_message_and_fits_the_question_limit(
    message: str, previous: str, reply: bool
) -> None:
    query = contextualize(message, Turn(previous, previous, (), 0.0), 1.0, reply)
    assert query.startswith(message.strip()) or query == message
    assert len(query) <= max(MAX_QUERY_CHARS, len(message))


# ---------------------------------------------------------------- the memory


def _turn(question: str, t: float = 0.0) -> Turn:
    return Turn(question, question, (f"{question}.txt",), t)


def test_memory_keeps_the_last_turns_of_a_chat_and_finds_the_one_a_message_answered() -> None:
    memory = Memory(chats=10, turns=2)
    for n, q in enumerate(["first", "second", "third"]):
        memory.remember(7, _turn(q), [100 + 2 * n, 101 + 2 * n])  # a reply of two messages
    assert memory.last(7) == _turn("third")
    assert memory.answered_by(7, 103) == _turn("second") and memory.answered_by(7, 105) == _turn("third")
    assert memory.answered_by(7, 100) is None  # the first turn fell out
    assert memory.answered_by(8, 103) is None and memory.last(8) is None  # another chat


def test_memory_forgets_the_least_recently_active_chat_first() -> None:
    memory = Memory(chats=3)
    for chat in (1, 2, 3):
        memory.remember(chat, _turn(f"q{chat}"), [chat])
    memory.remember(1, _turn("again"), [10])  # chat 1 is active again: chat 2 is now the oldest
    memory.remember(4, _turn("q4"), [4])
    assert len(memory) == 3
    assert memory.last(2) is None and memory.last(1) == _turn("again") and memory.last(4) == _turn("q4")


def test_forget_drops_the_chat_only() -> None:
    memory = Memory()
    memory.remember(1, _turn("a"), [1])
    memory.remember(2, _turn("b"), [2])
    assert memory.forget(1) is True and memory.forget(1) is False
    assert memory.last(1) is None and memory.answered_by(1, 1) is None and memory.last(2) == _turn("b")


def test_the_query_limit_is_the_question_limit() -> None:
    from qabot.retrieve import MAX_QUESTION_CHARS

    assert MAX_QUERY_CHARS == MAX_QUESTION_CHARS


@pytest.mark.parametrize("unit", ["the ", "word ", "a. ", "What did they say? "])
def test_leaning_grows_linearly_with_the_message(unit: str) -> None:
    """Ten times the text costs about ten times the time, not a hundred (it was quadratic: 28 s at
    100,000 characters). A ratio, best of three, so the machine's speed does not matter."""
    import time

    def best(text: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            leans_on_previous(text)
            times.append(time.perf_counter() - started)
        return min(times)

    short, long = best(unit * (10_000 // len(unit))), best(unit * (100_000 // len(unit)))
    assert long < 30 * short + 0.05, (short, long)  # linear: ~10x; quadratic: ~100x


@pytest.mark.parametrize(("message", "refers"), [
    ("when will it end", True),
    ("who did they beat", True),
    ("How much will it pay?", True),
    ("Did Biden say he would run?", False),  # a name for "he"
    ("what about japan", True),  # asks the previous question again, of japan
    ("and the womens winner?", True),  # alone it lacks what is asked (a hot dog contest's)
    ("so who won the world series", False),  # leans by its opening; "so" may start a new topic
    ("coastal airways deal", False),  # leans by saying little
    ("which network airs it", True),  # an object "it": what the previous answer was about
    ("how long was it", True),  # "how long" asks; it is no noun "it" could be
    ("is anyone suing them", True),  # "anyone" is no one "them" could be
])
def test_refers_back_is_the_pronoun_part_of_leaning(message: str, refers: bool) -> None:
    assert refers_back(message) is refers
    assert not refers or leans_on_previous(message)


@pytest.mark.parametrize("message", [
    "when did tom brady announce his retirement",  # "tom brady" typed without capitals
    "why did the backstreet boys delay their tour",
    "what did the company say it would do with the money",  # "it" as a subject after a noun
    "which country says it is bankrupt now",  # … or after "which …"
])
def test_a_lowercase_pronoun_after_a_noun_leaves_the_decision_to_the_evidence(message: str) -> None:
    """Without capitals a name can't be seen: the pronoun may stand for a noun of the message,
    so it leans (the bot searches both ways) but does not settle it (refers_back)."""
    assert leans_on_previous(message)
    assert not refers_back(message)


@pytest.mark.parametrize("message", [
    "how hot did it get in england",
    "where will it rain most this weekend",
    "is it going to snow in denver",
    "which senator changed her vote",  # "her": the senator's
])
def test_the_weathers_it_and_a_which_subjects_her_point_nowhere(message: str) -> None:
    assert not leans_on_previous(message)


def test_a_follow_up_borrows_the_subject_not_the_time_words() -> None:
    turn = Turn("who runs the broncos now", "who runs the broncos now", ("a.txt",), time=0.0)
    query = contextualize("how much did they pay for the team", turn, 30.0, is_reply=True)
    assert "broncos" in query and "now" not in query.split("(")[1]
    turn = Turn("latest on monkeypox vaccines today", "latest on monkeypox vaccines today", (), time=0.0)
    assert contextualize("who makes them", turn, 30.0, is_reply=True) == "who makes them (monkeypox vaccines)"


def test_a_turn_says_what_not_to_lead_with_again_unless_asked_again_word_for_word() -> None:
    asked = "who bought the broncos"
    turn = Turn(asked, asked, ("a.txt",), 0.0, said="Walton bought them.")
    assert turn.said_to("how much did they pay") == "Walton bought them."
    assert turn.said_to("who bought the broncos") == ""  # the same question: the same answer is right
    assert Turn("q", "q", (), 0.0).said_to("another") == ""  # nothing led
