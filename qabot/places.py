"""The places a question can ask for by name: "which country", "which state", "which continent".

A sentence that answers "which country banned rainbow toys" names a country; its other names
(the capital, the ministry, the dateline's city) are not the answer. With the list, the answering
phrase is the first country the question does not already name (or its adjective: "Saudi Arabian
officials", "the Ukrainian first lady"), and none when the sentence names no country (better
unmarked than a wrong name).
"""

from __future__ import annotations

import functools
import re

COUNTRIES = (
    "Afghanistan|Albania|Algeria|Andorra|Angola|Antigua and Barbuda|Argentina|Armenia|Australia|Austria|"
    "Azerbaijan|Bahamas|Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|Bolivia|"
    "Bosnia and Herzegovina|Botswana|Brazil|Britain|Brunei|Bulgaria|Burkina Faso|Burma|Burundi|Cambodia|"
    "Cameroon|Canada|Cape Verde|Central African Republic|Chad|Chile|China|Colombia|Comoros|Congo|"
    "Costa Rica|Croatia|Cuba|Cyprus|Czech Republic|Czechia|Denmark|Djibouti|Dominica|Dominican Republic|"
    "East Timor|Ecuador|Egypt|El Salvador|England|Equatorial Guinea|Eritrea|Estonia|Eswatini|Ethiopia|"
    "Fiji|Finland|France|Gabon|Gambia|Georgia|Germany|Ghana|Great Britain|Greece|Greenland|Grenada|"
    "Guatemala|Guinea|Guinea-Bissau|Guyana|Haiti|Honduras|Hong Kong|Hungary|Iceland|India|Indonesia|Iran|"
    "Iraq|Ireland|Israel|Italy|Ivory Coast|Jamaica|Japan|Jordan|Kazakhstan|Kenya|Kiribati|Kosovo|Kuwait|"
    "Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|Liberia|Libya|Liechtenstein|Lithuania|Luxembourg|Madagascar|"
    "Malawi|Malaysia|Maldives|Mali|Malta|Marshall Islands|Mauritania|Mauritius|Mexico|Micronesia|Moldova|"
    "Monaco|Mongolia|Montenegro|Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|Netherlands|New Zealand|"
    "Nicaragua|Niger|Nigeria|North Korea|North Macedonia|Northern Ireland|Norway|Oman|Pakistan|Palau|"
    "Palestine|Panama|Papua New Guinea|Paraguay|Peru|Philippines|Poland|Portugal|Puerto Rico|Qatar|"
    "Romania|Russia|Rwanda|Saint Lucia|Samoa|San Marino|Saudi Arabia|Scotland|Senegal|Serbia|Seychelles|"
    "Sierra Leone|Singapore|Slovakia|Slovenia|Solomon Islands|Somalia|South Africa|South Korea|"
    "South Sudan|Spain|Sri Lanka|Sudan|Suriname|Sweden|Switzerland|Syria|Taiwan|Tajikistan|Tanzania|"
    "Thailand|Togo|Tonga|Trinidad and Tobago|Tunisia|Turkey|Türkiye|Turkmenistan|Tuvalu|Uganda|Ukraine|"
    "United Arab Emirates|United Kingdom|United States|Uruguay|Uzbekistan|Vanuatu|Vatican City|Venezuela|"
    "Vietnam|Wales|Yemen|Zambia|Zimbabwe"
)
US_STATES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
    "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
    "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|"
    "New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|"
    "South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)
CONTINENTS = "Africa|Antarctica|Asia|Australia|Europe|North America|South America|Oceania"
# What a country's name gives no clue to ("Ukrainian first lady", "Chinese officials"); those in
# -n ("Russian", "Colombian") are matched as the name and an "n".
COUNTRY_ADJECTIVES = (
    "Afghan|Albanian|Algerian|American|Argentine|Argentinian|Armenian|Azerbaijani|Bangladeshi|Belarusian|"
    "Belgian|Bosnian|Brazilian|British|Bulgarian|Cambodian|Canadian|Chilean|Chinese|Congolese|Croatian|"
    "Cuban|Czech|Danish|Dutch|Ecuadorian|Egyptian|Emirati|English|Estonian|Filipino|Finnish|French|"
    "Georgian|German|Ghanaian|Greek|Guatemalan|Haitian|Honduran|Hungarian|Icelandic|Iranian|Iraqi|Irish|"
    "Israeli|Italian|Jamaican|Japanese|Jordanian|Kazakh|Kuwaiti|Latvian|Lebanese|Libyan|Lithuanian|"
    "Malaysian|Maltese|Mexican|Moldovan|Mongolian|Moroccan|Nepali|Nicaraguan|Norwegian|Omani|Pakistani|"
    "Palestinian|Panamanian|Paraguayan|Peruvian|Polish|Portuguese|Qatari|Romanian|Rwandan|Salvadoran|"
    "Saudi|Scottish|Senegalese|Serbian|Singaporean|Slovak|Slovenian|Somali|Spanish|Sudanese|Swedish|"
    "Swiss|Taiwanese|Thai|Tunisian|Turkish|Ugandan|Ukrainian|Uruguayan|Uzbek|Venezuelan|Vietnamese|"
    "Welsh|Yemeni|Zambian|Zimbabwean"
)


def _named(names: str) -> re.Pattern[str]:
    # "Saudi Arabian officials", "a Colombian court", "African leaders": the adjective names it too.
    return re.compile(rf"\b(?:{names})n?\b")


_NATIONS = _named(f"{COUNTRIES}|{COUNTRY_ADJECTIVES}")
_BY_NOUN = {"country": _NATIONS, "nation": _NATIONS, "state": _named(US_STATES),
            "continent": _named(CONTINENTS)}
_ASKS = re.compile(r"\b(?:which|what) (?:\w+ )?(country|nation|state|continent)s?\b", re.I)
# A country other than the US named in a question ("which state in india"), in any case.
_ABROAD = re.compile(rf"\b(?!(?:United States|American|Georgia)\b)(?:{COUNTRIES}|{COUNTRY_ADJECTIVES})n?\b",
                     re.I)
# "Palm Beach, Florida", "Coeur d'Alene, Idaho": a place and the state or country it is in.
IN_REGION = re.compile(rf",\s+(?:{US_STATES}|{COUNTRIES})\b")


@functools.lru_cache(maxsize=64)
def asked(question: str) -> re.Pattern[str] | None:
    """The names a "which country / state / continent" question asks for, or None when it asks
    for no such place (asked of every candidate sentence: remembered)."""
    m = _ASKS.search(question)
    if m is None:
        return None
    noun = m.group(1).lower()
    if noun == "state" and _ABROAD.search(question):
        return None  # "which state in india…", "which australian state…": not a US state
    return _BY_NOUN[noun]
