"""Small talk gets a friendly reply; every real question, however it starts, gets None."""

from __future__ import annotations

import pytest

from qabot.smalltalk import REPLIES, Kind, classify, small_talk


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("hi", Kind.GREETING),
        ("Hello!", Kind.GREETING),
        ("hey there", Kind.GREETING),
        ("Good morning", Kind.GREETING),
        ("good evening, bot", Kind.GREETING),
        ("hiii", Kind.GREETING),
        ("Heyyy 👋", Kind.GREETING),
        ("Hola", Kind.GREETING),
        ("Bonjour !", Kind.GREETING),
        ("Guten Morgen", Kind.GREETING),
        ("привет", Kind.GREETING),
        ("thanks!", Kind.THANKS),
        ("Thank you so much", Kind.THANKS),
        ("thx", Kind.THANKS),
        ("cheers", Kind.THANKS),
        ("thanks a lot, that helps", Kind.THANKS),
        ("Thank you for your help!", Kind.THANKS),
        ("ok thanks", Kind.THANKS),
        ("merci beaucoup", Kind.THANKS),
        ("Gracias", Kind.THANKS),
        ("thanksss 🙏", Kind.THANKS),
        ("bye", Kind.BYE),
        ("Goodbye!", Kind.BYE),
        ("see you later", Kind.BYE),
        ("good night", Kind.BYE),
        ("au revoir", Kind.BYE),
        ("thanks, bye!", Kind.THANKS_BYE),
        ("who are you?", Kind.HELP),
        ("What can you do?", Kind.HELP),
        ("help", Kind.HELP),
        ("/help", Kind.HELP),
        ("hi, what can you do?", Kind.HELP),
        ("Are you a bot?", Kind.HELP),
        ("how are you?", Kind.HOW_ARE_YOU),
        ("Hey, how's it going?", Kind.HOW_ARE_YOU),
        ("ok", Kind.ACK),
        ("Cool", Kind.ACK),
        ("great!", Kind.ACK),
        ("got it", Kind.ACK),
        ("cooool", Kind.ACK),
        ("👍", Kind.ACK),
        ("👋", Kind.GREETING),
        ("❤️", Kind.THANKS),
        ("😂😂", Kind.EMOJI),
        (":)", Kind.EMOJI),
    ],
)
def test_small_talk(message: str, kind: Kind) -> None:
    assert classify(message) == kind
    assert small_talk(message) == REPLIES[kind]


@pytest.mark.parametrize(
    "message",
    [
        "hi, who won the US Open?",
        "thanks, and who won the Open?",
        "Hello, what happened in Kabul yesterday?",
        "Good morning! Did the Fed raise rates?",
        "ok and what about inflation?",
        "thanks. what did Biden say about student loans?",
        "Who won the US Open?",
        "How can I help Ukrainian refugees?",
        "Help for renters facing eviction",
        "Thanks to the new law, who qualifies for loan forgiveness?",
        "Who are you voting for in the midterms?",
        "What's up with gas prices?",
        "How are you supposed to get a free Covid test?",
        "Good Morning America host fired?",
        "Hello Kitty maker profits",
        "Cheers for the Queen at the Jubilee?",
        "Great Resignation numbers",
        "OK Boomer meaning",
        "Yes or no: did Trump testify?",
        "Bye-election results in Wyoming",
        "Is Ciao the name of the new Fiat?",
        "Ukraine?",
        "inflation",
        "Mar-a-Lago",
        "Who said 'thank you' to the troops?",
        "What did the Pope say at the evening mass?",
        "Why did the Today show host leave?",
        "Who is the new NATO secretary general?",
        "When does the student loan pause end?",
        "How many people died in the Kentucky floods?",
        "What is monkeypox?",
        "Did Liz Cheney lose her primary?",
        "Which team bought the Denver Broncos?",
        "Is the Artemis launch delayed?",
        "What is the national average gas price?",
        "Hi there, is the FBI search of Mar-a-Lago legal?",
        "Morning news summary please",
        "Top stories today",
        "?",
        "...",
        "",
        "   ",
        "1",
    ],
)
def test_real_questions_are_not_small_talk(message: str) -> None:
    assert small_talk(message) is None
