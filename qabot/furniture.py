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
# A caption without its year ("A firefighter runs to extinguish flames from the Oak Fire in
# Mariposa County on Friday.", "Gustavo Petro speaks at an election debate in Bogota on Monday."):
# ending on a day, naming where the picture was taken, and in no past tense (a one-sentence
# paragraph of the story tells what happened: "Biden signed the bill in Washington on Tuesday.").
# Read off the dev corpus: 13 such lines, all captions (docs/answers.md).
_DAY_END = re.compile(rf"(?:\bon|,)\s+(?:(?:{_MONTHS})\s+\d{{1,2}}"
                      r"|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\.?\s*$")
_PICTURED_AT = re.compile(r"\b(?:in|at|near|outside)\s+(?:the\s+)?[A-Z]")
# ("their destroyed home": after a determiner a participle describes; "-ed" alone is no past.
# Not sentences.IRREGULAR: that maps a stemmer's forms, lacks "went", "came", "saw", and sentences
# imports this module.)
_PAST = re.compile(r"(?<!\btheir )(?<!\bthe )(?<!\bhis )(?<!\bher )(?<!\bits )(?<!\ba )(?<!\ban )\b\w+ed\b"
                   r"|['’](?:ll|d)\b|\b(?:took|went|came|made|won|lost|left|met|held|gave|got"
                   r"|set|put|ran|saw|began|fell|rose|beat|led|sent|spent|paid|sold|bought|found|kept"
                   r"|brought|thought|struck|wrote|spoke|chose|drove|flew|grew|knew|threw|shot|stood"
                   r"|sat|became|broke|caught|hit|cut|quit)\b", re.IGNORECASE)
_SUBORDINATE = re.compile(r"^\W*(?:if|after|when|as|while|before|until|since|this|note)\b", re.IGNORECASE)


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
    return bool(_DATED_END.search(sentence) or _PICTURE_VERB.search(sentence) or _undated_caption(sentence))


def _undated_caption(sentence: str) -> bool:
    """A caption that gives its day but not its year (the `alone` ones, no narrative verb)."""
    return bool(_DAY_END.search(sentence) and _PICTURED_AT.search(sentence)
                and not _PAST.search(sentence) and not _SUBORDINATE.match(sentence))
