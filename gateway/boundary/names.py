"""Name evidence beside the NER model: where the text itself says a name stands.

A small NER model misses names in e-mails, tickets and structured text. These cues find them:
salutations and sign-offs (``Dear X``, ``Thanks, X``, ``Regards,\\nX``), mail headers and
addresses with a display name (``From: X <addr>``), honorifics (Mr, Dr, Herr, Mme, Sra, ...),
name fields (``"customer": "X"``, a ``full_name`` column) and a name whose words make up an
e-mail address's local part in the same text. First and last names from Faker's locale
providers only support a cue (a name beside "assigned to", a token of an address); a listed
word alone is never a finding.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import re
from collections.abc import Iterator

from gateway.boundary.fields import Fields, key_words, matches
from gateway.boundary.rules import Hit

__all__ = ["NAME_SCORE", "has_name_token", "known_name", "name_hits", "name_like"]

NAME_SCORE = 0.85


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LOCALES = (
    "en_US", "en_GB", "en_IE", "en_IN", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA", "es_ES",
    "es_MX", "it_IT", "nl_NL", "pt_BR", "pt_PT", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI",
    "cs_CZ", "tr_TR", "ro_RO", "hu_HU", "hr_HR", "sk_SK", "sl_SI", "et_EE", "lt_LT", "lv_LV",
    "id_ID", "fil_PH",
)  # fmt: skip
# Listed first or last names that are also common words: no support from the list.
_COMMON = _words(
    "will may mark bill grant rose long young park green white black brown king page case "
    "key hope joy faith love summer june april august art bell ball field hill wood stone "
    "best hall lane more north west south east day chase price cash major rich street "
    "bank city team support sales admin user customer client service thanks dear hi hello "
    "all everyone there guys folks sir madam the and for with from"
)
_PARTICLES = _words("van von de da del der den di la le du dos das do y bin al ten ter zu")
_NOT_NAMES = _words(
    "team all everyone there support sales admin customer client user colleagues folks guys "
    "sir madam mesdames messieurs damen herren equipo équipe tutti everybody friend friends "
    "the a an this that it we you i our your my me us them him her they again"
)

_TOKEN = r"[^\W\d_][^\W\d_'\u2019.-]*(?:['\u2019-][^\W\d_]+)*\.?"
_NAME = rf"(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,3}})"

_HONORIFIC = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|M\.|Mme|Mlle|Monsieur|Madame|Sr|Sra"
    r"|Srta|Señor|Señora|Señorita|Don|Doña|Sig|Sig\.ra|Signor|Signora|Dott|Dott\.ssa|Ing"
    r"|Mevrouw|Meneer|Dhr|Mevr|Pan|Pani)\.?"
)
_SALUTATION = re.compile(
    r"(?<![\w])(?i:dear|hi|hello|hey|hallo|liebe|lieber|sehr geehrte[rs]?|bonjour|salut|cher"
    r"|chère|hola|estimad[oa]|querid[oa]|ciao|caro|cara|gentile|beste|hoi|olá|oi|prezad[oa]"
    r"|cześć|hej|good morning|good afternoon|morning|szanown[ya]|drog[ia]|bästa|kära)[ \t]+"
    rf"(?:{_HONORIFIC}[ \t]+)?{_NAME}"
)
_SIGN_OFF = re.compile(
    r"(?<![\w])(?i:thanks|thank you|many thanks|regards|best regards|kind regards|warm regards"
    r"|best wishes|best|cheers|sincerely|yours truly|yours|respectfully|viele grüße|beste grüße"
    r"|mit freundlichen grüßen|liebe grüße|lg|mfg|cordialement|bien à vous|amitiés|saludos"
    r"|atentamente|un saludo|grazie|cordiali saluti|distinti saluti|saluti|met vriendelijke groet"
    r"|groeten|groetjes|atenciosamente|abraços|obrigad[oa]|pozdrawiam|med vänliga hälsningar"
    r"|hälsningar|mvh|ta|danke|merci|gracias|bedankt|dzięki|dziękuję|tack|takk|kiitos)"
    r"[ \t]*[,!.]?[ \t]*(?:\r?\n[ \t]*)?(?:[-\u2013\u2014~]{1,2}[ \t]*)?"
    rf"{_NAME}[ \t]*(?=\r?\n|$|[,.!<(|])"
)
_HEADER = re.compile(
    r"(?im)^[ \t>]*(?:from|to|cc|bcc|reply-to|sender|von|an|de|à|para|da|a|van|aan|attn|"
    r"attention|assignee|assigned to|reporter|owner|signed|author|patient|customer)[ \t]*:"
    rf"[ \t]*(?:{_HONORIFIC}[ \t]+)?{_NAME}"
)
_CAP_TOKEN = r"[A-ZÀ-ÖØ-Þ][^\W\d_'\u2019.-]*(?:['\u2019-][^\W\d_]+)*"
# "this is X", "X here", "ich bin X", "je suis X": someone names themselves.
_SELF = re.compile(
    r"(?<![\w])(?i:this is|it's|it is|i am|i'm|my name is|me llamo|soy|je suis|je m'appelle"
    r"|ich bin|mein name ist|hier ist|sono|mi chiamo|ik ben|mijn naam is|hier is|eu sou|sou o"
    r"|sou a|meu nome é|jestem|nazywam się|z tej strony|jag heter|jag är|det är)[ \t]+" + _NAME
)
_HERE = re.compile(r"(?<![\w])(?P<name>[A-ZÀ-ÖØ-Þ][^\W\d_]+(?:[ \t][A-ZÀ-ÖØ-Þ][^\W\d_]+)?) here\b")
# iCalendar and LDAP: "ORGANIZER;CN=Jane Doe:mailto:", "cn=Jane Doe,ou=people".
_COMMON_NAME = re.compile(r"(?<![A-Za-z])(?:CN|cn)=" + _NAME)
# "Attendees: Ann Lee, Bo Chen and Eva Roth": a list of people after a people word.
_PEOPLE_LIST = re.compile(
    r"(?im)^[ \t>*-]*(?:attendees|participants|present|guests|invitees|speakers|signatories"
    r"|teilnehmer|anwesend|participants|présents|asistentes|partecipanti|presenti|deelnemers"
    r"|aanwezig|participantes|presentes|uczestnicy|obecni|deltagare|närvarande)[ \t]*:[ \t]*(.+)$"
)
_LIST_SPLIT = re.compile(
    r"\s*(?:[,;/&]|\band\b|\bund\b|\bet\b|\by\b|\be\b|\ben\b|\boch\b|\bi\b)\s*"
)
# "... and Jane Doe, residing at", "Jane Doe, born 1980": a party to a contract.
_PARTY = re.compile(
    r"(?<![\w])(?P<name>"
    + _CAP_TOKEN
    + r"(?:[ \t]+"
    + _CAP_TOKEN
    + r"){0,3})"
    + r",?[ \t]+(?i:residing|resident|domiciled|born|geboren|wohnhaft|demeurant|né|née"
    r"|domiciliad[oa]|nacid[oa]|residente|nato|nata|wonende|residente|zamieszkał[ay]?|boende)\b"
)
# Not after a letter: a match that starts inside a word also starts at the word's start, and
# trying each position of a long word would read the rest of it again (its length squared).
_DISPLAY_NAME = re.compile(rf"\"?(?<![^\W\d_]){_NAME}\"?[ \t]*<[^<>\s@]+@[^<>\s]+>")
# "Okafor, Chidi" <chidi@example.org>: a quoted display name, last name first.
_QUOTED_NAME = re.compile(
    r"\"(?P<name>[^\"\n<>@,]{1,40},[ \t]*[^\"\n<>@,]{1,40})\"[ \t]*<[^<>\s@]+@"
)
_WITH_HONORIFIC = re.compile(rf"(?<![\w]){_HONORIFIC}[ \t]+{_NAME}")
_EMAIL_LOCAL = re.compile(r"([\w.+-]{2,64})@[\w-]+\.")
_CAPITALIZED_RUN = re.compile(
    rf"(?<![\w]){_CAP_TOKEN}(?:[ \t]+(?:(?:van|von|de|da|del|der|den|di|la|le|du|dos)[ \t]+){{0,2}}"
    rf"{_CAP_TOKEN}){{0,3}}"
)
# A weak cue that a name follows; only a listed first or last name makes it a finding. After
# a preposition ("from Paris") the name needs two words.
_CUE = re.compile(
    r"(?<![\w])(?i:assigned to|signed by|reported by|approved by|owned by|created by|ask|asked"
    r"|call|called|contact|cc|per|met|told|named|colleague|manager|employee|patient|customer"
    r"|client|user|c/o|attn|applicant|tenant|landlord|buyer|seller|holder|cardholder|beneficiary"
    r"|signatory|guest|candidate|student|member)[ \t]+(?=" + _NAME + ")"
)
_PREPOSITION = re.compile(
    r"(?<![\w])(?i:by|with|from|for|to|mit|avec|con|par|para|von|für)[ \t]+(?=" + _NAME + ")"
)
# name: "Jane Doe" | 'Jane' | Jane Doe (YAML, key=value) under a key with a person word.
_PERSON_FIELD = re.compile(
    r"(?P<key>[A-Za-z_][\w-]{0,40})[\"']?[ \t]*(?:=>|:=|=|:)[ \t]*"
    r"(?:\"(?P<q2>[^\"\n]{1,80})\"|'(?P<q1>[^'\n]{1,80})'|(?P<bare>[^\n,;}{\]|\"'<>=&]{1,80}))"
)


@functools.cache
def _names() -> tuple[frozenset[str], frozenset[str]]:
    """First and last names of many locales, casefolded, less common words."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in _LOCALES:
        try:
            module = importlib.import_module(f"faker.providers.person.{locale}")
        except ImportError:
            continue
        provider = module.Provider
        for attr, into in (
            ("first_names", first),
            ("first_names_male", first),
            ("first_names_female", first),
            ("last_names", last),
        ):
            for name in getattr(provider, attr, ()) or ():
                into.update(part.casefold() for part in re.split(r"[ -]", str(name)) if part)
    return frozenset(first - _COMMON), frozenset(last - _COMMON)


def known_name(token: str) -> bool:
    """Whether ``token`` is a listed first or last name (supporting evidence only)."""
    first, last = _names()
    word = token.casefold().rstrip(".")
    return word in first or word in last


def name_like(value: str) -> tuple[int, int] | None:
    """The span of the name in ``value`` (capitalized words, particles inside), or None."""
    tokens = list(re.finditer(r"\S+", value))
    kept: list[re.Match[str]] = []
    for tok in tokens:
        word = tok.group().rstrip(",")
        if not re.fullmatch(_TOKEN, word):
            break
        capitalized = word[0].isupper() and word.casefold() not in _NOT_NAMES
        if not (capitalized or word.casefold() in _PARTICLES):
            break
        kept.append(tok)
    while kept and kept[-1].group().casefold() in _PARTICLES:
        kept.pop()
    if all(k.group().casefold() in _PARTICLES for k in kept):
        return None
    end = kept[-1].end()
    last = value[kept[-1].start() : end]
    if last.endswith(",") or (last.endswith(".") and len(last) > 2):
        end -= 1  # a sentence's full stop, not an initial's
    return kept[0].start(), end


def _from_group(match: re.Match[str], group: str = "name") -> Hit | None:
    span = name_like(match.group(group))
    if span is None:
        return None
    base = match.start(group)
    return base + span[0], base + span[1], NAME_SCORE


def name_hits(text: str, fields: Fields | None = None) -> list[tuple[Hit, str]]:
    """PERSON hits from cues in ``text``, each with the id of its cue."""
    found: list[tuple[Hit, str]] = []
    for regex, rule in (
        (_SALUTATION, "name.salutation"),
        (_SIGN_OFF, "name.sign_off"),
        (_HEADER, "name.header"),
        (_DISPLAY_NAME, "name.header"),
        (_WITH_HONORIFIC, "name.honorific"),
        (_SELF, "name.self"),
        (_HERE, "name.self"),
        (_COMMON_NAME, "name.header"),
        (_PARTY, "name.party"),
    ):
        for match in regex.finditer(text):
            hit = _from_group(match)
            if hit is not None:
                found.append((hit, rule))
    for match in _PEOPLE_LIST.finditer(text):
        pos = match.start(1)
        for part in _LIST_SPLIT.split(match.group(1)):
            at = text.index(part, pos) if part else pos
            pos = at + len(part)
            span = name_like(part)
            if span is not None and len(part[span[0] : span[1]].split()) >= 2:
                found.append(((at + span[0], at + span[1], NAME_SCORE), "name.list"))
    for match in _QUOTED_NAME.finditer(text):
        last, _, first = match.group("name").partition(",")
        if name_like(last) == (0, len(last)) and name_like(first.strip()):
            found.append(((match.start("name"), match.end("name"), NAME_SCORE), "name.header"))
    found.extend((hit, "name.field") for hit in _field_hits(text, fields or Fields(text)))
    found.extend((hit, "name.email") for hit in _email_hits(text))
    found.extend((hit, "name.listed") for hit in _cued_hits(text))
    return found


def _field_hits(text: str, fields: Fields) -> Iterator[Hit]:
    for match in _PERSON_FIELD.finditer(text):
        if not matches("PERSON", key_words(match.group("key"))):
            continue
        group = "q2" if match.group("q2") else "q1" if match.group("q1") else "bare"
        value = match.group(group)
        span = name_like(value.strip())
        if span is None or len(value.split()) > 5:
            continue
        base = match.start(group) + (len(value) - len(value.lstrip()))
        yield base + span[0], base + span[1], NAME_SCORE
    yield from fields.cells_named(lambda key: matches("PERSON", key_words(key)), name_like)


def _email_hits(text: str) -> Iterator[Hit]:
    """Capitalized runs that spell an address's local part in the same text.

    Each distinct run is tested once against an index of the local parts, not against each
    address in turn: a text made of addresses and capitalized words would otherwise cost
    their product.
    """
    locals_ = {m.group(1).casefold() for m in _EMAIL_LOCAL.finditer(text)}
    if not locals_:
        return
    whole = {_letters(local) for local in locals_}
    # Words of each local part, and which local parts hold each word.
    holders: dict[str, set[int]] = {}
    for i, local in enumerate(locals_):
        for part in {_letters(p) for p in re.split(r"[._+-]+", local) if len(p) > 1}:
            holders.setdefault(part, set()).add(i)
    spelled: dict[tuple[str, ...], bool] = {}
    for run in _CAPITALIZED_RUN.finditer(text):
        span = name_like(run.group())
        if span is None:
            continue
        words = tuple(_letters(w) for w in run.group()[span[0] : span[1]].split())
        if words not in spelled:
            spelled[words] = _spells(words, whole, holders)
        if spelled[words]:
            yield run.start() + span[0], run.start() + span[1], NAME_SCORE


def _letters(word: str) -> str:
    return "".join(c for c in word.casefold() if c.isalpha())


def _spells(words: tuple[str, ...], whole: set[str], holders: dict[str, set[int]]) -> bool:
    """ "Jane Doe" for jane.doe@, doe.jane@, janedoe@, jdoe@ (a single word must be listed).

    ``whole``: the local parts' letters; ``holders``: for each word of a local part, the
    local parts that hold it.
    """
    if len(words) >= 2:
        first, last = words[0], words[-1]
        return bool(holders.get(first, set()) & holders.get(last, set())) or any(
            local in whole
            for local in (first + last, last + first, first[0] + last, first + last[0])
        )
    word = words[0]
    return len(word) > 2 and (word in holders or word in whole) and known_name(word)


def _cued_hits(text: str) -> Iterator[Hit]:
    first, last = _names()
    for regex, least in ((_CUE, 1), (_PREPOSITION, 2)):
        for match in regex.finditer(text):
            span = name_like(match.group("name"))
            if span is None:
                continue
            base = match.start("name")
            words = [w.casefold() for w in match.group("name")[span[0] : span[1]].split()]
            if len(words) >= least and (
                words[0] in first or (len(words) > 1 and words[-1] in last)
            ):
                yield base + span[0], base + span[1], NAME_SCORE


_CAPITAL = re.compile(r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]")


def has_name_token(text: str) -> bool:
    """Whether ``text`` has a capitalized word, the least a name needs (else NER is skipped)."""
    return _CAPITAL.search(text) is not None or (not text.isascii() and _non_ascii_capital(text))


def _non_ascii_capital(text: str) -> bool:
    return any(a.isupper() and b.islower() for a, b in itertools.pairwise(text))
