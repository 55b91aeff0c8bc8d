"""Lines of a news web page that are not the story: photo captions and credits, gallery and
live-page furniture, teasers for other stories. Never an answer, whatever words they share.

A pure test on one sentence (and whether it stands alone on its line): the answer layer drops
what it matches before scoring. The patterns come from reading the dev corpus (CNN, USA Today,
The Week; docs/answers.md has what they drop there and the false drops found by eye).
"""

from __future__ import annotations

import re

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.")

# Page furniture anywhere in the sentence: CNN's gallery ("Hide Caption 3 of 18 Photos: …"), live
# pages ("Follow here for the latest updates…", "LIVE UPDATES:"), photo credits ("Jane Doe/AP": only
# the name's last word is matched, which decides the same and spares the regex a backtracking
# run over every capitalised word, 150 µs a sentence).
_ANYWHERE = re.compile(
    r"\bhide caption\b|\b\d+ of \d+ photos?:"
    r"|\bfollow (?:here|along|live|our live)\b.{0,40}\b(?:latest|live|updates|coverage)\b"
    r"|\bUPDATES?:|\beditor['’]s note:|here['’]s what you need to know"
    r"|\((?:photo|image|video)(?: by| credit)?[^)]*\)|\b(?:AP|AFP|Reuters|EPA) (?:Photo|Images)\b"
    r"|[A-Z][\w.'’-]*/(?:Getty Images|AP|AFP|Reuters|EPA|Shutterstock"
    r"|Bloomberg|NurPhoto|Sipa|ZUMA|Imagn|SOPA Images|LightRocket)\b",
    re.IGNORECASE,
)
# A video player's furniture, in capitals as the page writes it ("JUST WATCHED <title> Replay More
# Videos ... MUST WATCH <title> 02:49", "Video Ad Feedback <title> 01:15 - Source: CNN"): the
# title of a video beside the story, not the story. Case-sensitive: "a must watch" is prose.
_PLAYER = re.compile(r"\bJUST WATCHED\b|\bMUST WATCH\b|\bReplay More Videos\b|\bVideo Ad Feedback\b"
                     r"|\b\d\d:\d\d - Source: CNN\b")
# A line that opens with a label and then a headline: a teaser for another story or a gallery
# ("Opinion: …", "Analysis:…", "Photos: Amazing pictures of Earth", "In pictures: …", "Watch: …").
_LABEL = re.compile(
    r"^\s*(?:in pictures|photos?|pictures|gallery|video|watch|listen|live updates|live|related"
    r"|read more|more|opinion|analysis|explainer|perspective|editorial|exclusive|breaking)\s*:",
    re.IGNORECASE,
)
# A photo caption: one sentence alone on its line, in the present tense of a picture ("A protester
# wears…", "… is seen …"), ending on the day it was taken ("… in Geneva on October 9, 2021.").
# Captions say what a picture shows, in the present: "… is displayed on the shelves …".
_PICTURE_VERB = re.compile(r"\b(?:is|are) (?:seen|displayed|pictured|shown)\b|\bposes? for\b"
                           r"|^(?:In this|This) (?:[\w-]+ )?(?:photo|image|picture)\b", re.IGNORECASE)
_DATED_END = re.compile(rf"\b(?:on|in|,)\s+(?:{_MONTHS})\s+\d{{1,2}},\s+\d{{4}}\.?\s*$")
_NARRATIVE = re.compile(r"\b(?:said|says|told|will|would|can|could|was|were|had|has|have|did)\b",
                        re.IGNORECASE)


# What follows a caption on its line: its photo credit ("David Stubbs/Reuters", "National Park
# Service/AP", "Mike Carlson/Getty Images", "Jane Doe/AFP via Getty Images").
_CREDIT_LINE = re.compile(
    r"\s*[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,5}/(?:Getty Images|AP|AFP|Reuters|EPA|Shutterstock|Bloomberg"
    r"|NurPhoto|Sipa|ZUMA|Imagn|SOPA Images|LightRocket|USA TODAY|CNN)\b[\w /.-]{0,40}")


def is_credit(rest: str) -> bool:
    """True when `rest` (what follows a sentence on its line) is only a photo credit: the
    sentence is then a caption, whatever its tense."""
    return bool(_CREDIT_LINE.fullmatch(rest.rstrip()))


def is_furniture(sentence: str, alone: bool = False) -> bool:
    """True for page furniture: a caption, a credit, a gallery or live-page line, a teaser.
    `alone`: the sentence is the whole of its line (captions stand alone)."""
    if _ANYWHERE.search(sentence) or _LABEL.match(sentence) or _PLAYER.search(sentence):
        return True
    if not alone or _NARRATIVE.search(sentence):
        return False
    return bool(_DATED_END.search(sentence) or _PICTURE_VERB.search(sentence))
