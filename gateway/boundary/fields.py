"""Field names as context: the key a value sits under in structured text.

``"phone": "..."`` (JSON), ``phone: ...`` (YAML), ``ssn=...`` (key=value logs), ``<phone>``
(XML), a CSV or TSV column under its header, an SQL ``INSERT`` column. A field named for an
entity is as strong a context as a word beside the value: it keeps a value that fails
validation (fields name what they hold) and it lifts a weak one (nine bare digits under
``ssn``). Keys are read on demand, per candidate, so text without structure costs nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["FIELD_WORDS", "Fields", "key_words", "matches"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The words of a field name that say what it holds, per entity.
FIELD_WORDS: dict[str, frozenset[str]] = {
    "PHONE_NUMBER": _words(
        "phone tel telephone mobile cell cellphone fax msisdn whatsapp sms handy telefon "
        "telefono portable movil celular telefone phonenumber"
    ),
    "US_SSN": _words("ssn social socialsecurity tin itin taxpayer sozial"),
    "US_ITIN": _words("itin tin taxpayer"),
    "CREDIT_CARD": _words("card pan cc ccnum creditcard cardnumber kreditkarte carte"),
    "IBAN_CODE": _words("iban account acct bank konto compte cuenta"),
    "PERSON": _words(
        "name fullname firstname lastname surname givenname familyname customer patient "
        "contact owner assignee reporter author requester recipient sender employee client "
        "manager nombre nom vorname nachname cliente kunde"
    ),
}
# A name field about something else: "file_name", "hostname", "product_name".
_NOT_PERSON = _words(
    "file host product company user username domain table column app service project model "
    "bucket db database event field key queue org organization branch repo team device server "
    "package class function tag image container cluster region zone brand item sku city street "
    "country state display screen account bank card group role node pod job task topic schema "
    "index metric label env path dir folder attribute param var variable"
)

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def key_words(key: str) -> frozenset[str]:
    """``customerFullName`` -> {customer, full, name, fullname, customerfullname, ...}."""
    parts = [p for p in _SPLIT.split(_CAMEL.sub("_", key).lower()) if p]
    words = set(parts)
    words.update(a + b for a, b in itertools.pairwise(parts))
    words.add("".join(parts))
    return frozenset(words)


def matches(entity: str, words: frozenset[str]) -> bool:
    """Whether a field with ``words`` holds ``entity``."""
    wanted = FIELD_WORDS.get(entity)
    if not wanted or not words & wanted:
        return False
    return entity != "PERSON" or not words & _NOT_PERSON


# The key right before a value: "phone": ", phone: ', ssn=, <phone>, "tel" => .
_KEY_BEFORE = re.compile(
    r"""(?:([A-Za-z_][\w.-]{0,40})["'\]]?[ \t]*(?:=>|:=|=|:|\t)[ \t]*["'(]?[ \t]*"""
    r"""|<([A-Za-z_][\w.-]{0,40})(?:\s[^<>]*)?>\s*)\Z"""
)
_DELIMS = (",", ";", "\t", "|")
_SEPARATORS = frozenset(":=>,;|(\t\n")
_HEADER_CELL = re.compile(r"""\s*["']?[A-Za-z_][\w .()/-]{0,40}["']?\s*""")
_INSERT = re.compile(r"insert\s+into\s+[\w.\"`\[\]]+\s*\(([^)]{1,2000})\)\s*values", re.I)


@dataclass
class Fields:
    """The field names of one text, read lazily (a CSV header and SQL columns once)."""

    text: str
    _lines: list[int] | None = None
    _headers: dict[int, list[str] | None] = field(default_factory=dict)
    _inserts: list[tuple[int, int, list[str]]] | None = None  # VALUES start, ";", columns

    def key_at(self, start: int) -> frozenset[str]:
        """The words of the field the value at ``start`` sits in (empty: none found)."""
        # A field's value follows a separator (": ", "=", ">", a delimiter, "(" or "," in
        # SQL), maybe a quote: a value in prose has none and needs no more looking.
        before = start
        while before > 0 and start - before < 4 and self.text[before - 1] in " \"'":
            before -= 1
        if before == 0 or self.text[before - 1] not in _SEPARATORS:
            return frozenset()
        words: set[str] = set()
        m = _KEY_BEFORE.search(self.text, max(0, start - 64), start)
        if m is not None:
            words |= key_words(m.group(1) or m.group(2))
        column = self._column(start)
        if column:
            words |= key_words(column)
        sql = self._sql_column(start)
        if sql:
            words |= key_words(sql)
        return frozenset(words)

    def _column(self, start: int) -> str | None:
        text = self.text
        line_start = text.rfind("\n", 0, start) + 1
        if line_start == 0:
            return None  # a header is above the value
        line_end = text.find("\n", start)
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        delim = max(_DELIMS, key=line.count)
        cells = line.count(delim)
        if not cells:
            return None
        header = self._header(line_start, delim, cells)
        if header is None:
            return None
        index = text.count(delim, line_start, start)
        return header[index] if index < len(header) else None

    def _header(self, line_start: int, delim: str, cells: int) -> list[str] | None:
        # The nearest line above with as many cells, all of them names: the header.
        if line_start in self._headers:
            return self._headers[line_start]
        found: list[str] | None = None
        end = line_start - 1
        for _ in range(200):
            begin = self.text.rfind("\n", 0, end) + 1
            row = self.text[begin:end]
            if row.count(delim) != cells:
                break
            parts = row.split(delim)
            if all(_HEADER_CELL.fullmatch(p) for p in parts):
                found = [p.strip().strip("\"'") for p in parts]
                break
            if begin == 0:
                break
            end = begin - 1
        self._headers[line_start] = found
        return found

    def _sql_column(self, start: int) -> str | None:
        if self._inserts is None:
            self._inserts = []
            if "insert" in self.text.lower():
                for m in _INSERT.finditer(self.text):
                    end = self.text.find(";", m.end())
                    columns = [c.strip().strip('"`[]') for c in m.group(1).split(",")]
                    self._inserts.append((m.end(), end if end >= 0 else len(self.text), columns))
        for values, end, columns in self._inserts:
            if values <= start < end:
                return self._tuple_column(values, start, columns)
        return None

    def _tuple_column(self, values: int, start: int, columns: list[str]) -> str | None:
        # The value's index in its tuple: commas at depth 1 since the tuple's "(".
        depth, index, quote = 0, 0, ""
        end = start - 1 if start and self.text[start - 1] in "'\"" else start
        for ch in reversed(self.text[values:end]):
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == ")":
                depth += 1
            elif ch == "(":
                if depth == 0:
                    return columns[index] if index < len(columns) else None
                depth -= 1
            elif ch == "," and depth == 0:
                index += 1
        return None

    def cells_named(
        self, wanted: Callable[[str], bool], shape: Callable[[str], tuple[int, int] | None]
    ) -> Iterator[tuple[int, int, float]]:
        """Spans (score 0.85) of ``shape`` in the CSV cells and SQL values of columns whose
        name is ``wanted``: the names under a ``customer`` column."""
        yield from self._csv_cells(wanted, shape)
        yield from self._sql_cells(wanted, shape)

    def _csv_cells(
        self, wanted: Callable[[str], bool], shape: Callable[[str], tuple[int, int] | None]
    ) -> Iterator[tuple[int, int, float]]:
        text = self.text
        if "\n" not in text:
            return
        header: tuple[str, int, frozenset[int]] | None = None  # delimiter, cells, wanted
        offset = 0
        for line in text.split("\n"):
            here, offset = offset, offset + len(line) + 1
            if header is not None and line.count(header[0]) == header[1] - 1:
                pos = here
                for i, cell in enumerate(line.split(header[0])):
                    if i in header[2]:
                        yield from _shaped(cell, pos, shape)
                    pos += len(cell) + 1
                continue
            header = None
            for delim in _DELIMS:
                parts = line.split(delim)
                if len(parts) > 1 and all(_HEADER_CELL.fullmatch(p) for p in parts):
                    names = [p.strip().strip("\"'") for p in parts]
                    found = frozenset(i for i, n in enumerate(names) if wanted(n))
                    header = (delim, len(parts), found) if found else None
                    break

    def _sql_cells(
        self, wanted: Callable[[str], bool], shape: Callable[[str], tuple[int, int] | None]
    ) -> Iterator[tuple[int, int, float]]:
        text = self.text
        if "insert" not in text.lower():
            return
        for m in _INSERT.finditer(text):
            columns = [c.strip().strip('"`[]') for c in m.group(1).split(",")]
            indices = {i for i, c in enumerate(columns) if wanted(c)}
            if not indices:
                continue
            for index, start, end in _sql_values(text, m.end()):
                if index in indices:
                    yield from _shaped(text[start:end], start, shape)


def _shaped(
    cell: str, pos: int, shape: Callable[[str], tuple[int, int] | None]
) -> Iterator[tuple[int, int, float]]:
    stripped = cell.strip().strip("\"'")
    if not stripped:
        return
    span = shape(stripped)
    if span is not None:
        base = pos + cell.index(stripped)
        yield base + span[0], base + span[1], 0.85


_SQL_VALUE = re.compile(r"\s*(?:'((?:[^']|'')*)'|\"([^\"]*)\"|([^,()\s]+))\s*")


def _sql_values(text: str, pos: int) -> Iterator[tuple[int, int, int]]:
    """(column index, start, end) of each value in the tuples of a VALUES list."""
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] != "(":
            return
        pos += 1
        index = 0
        while pos < len(text):
            m = _SQL_VALUE.match(text, pos)
            if m is None:
                return
            group = 1 if m.group(1) is not None else 2 if m.group(2) is not None else 3
            yield index, m.start(group), m.end(group)
            pos = m.end()
            if pos < len(text) and text[pos] == ",":
                pos += 1
                index += 1
                continue
            if pos < len(text) and text[pos] == ")":
                pos += 1
                break
            return
