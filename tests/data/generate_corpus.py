"""Generate tests/data/generated_corpus.json: labelled documents in 10 locales and 20 shapes.

    python tests/data/generate_corpus.py     # deterministic (fixed seeds): same file each run

Values come from Faker's locale providers (names, IBANs, cards, SSNs, ITINs, addresses,
companies) and from formats written here for what Faker does not make (phone numbers as
people write them, including area codes no plan has assigned; provider keys; long secrets).
The templates are documents as people and programs write them (tickets, e-mails, logs, JSON,
CSV, SQL, contract clauses, chat...), written from those shapes, not from the detector's
rules. Every sample lists its sensitive values and look-alikes (order ids, versions, dates,
sizes, hashes, amounts, ISBNs...) that must stay untouched; each occurs verbatim in its text.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from faker import Faker

OUT = Path(__file__).with_name("generated_corpus.json")
LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL", "sv_SE",
)  # fmt: skip
PER_SHAPE_AND_LOCALE = 10
HELLO = {
    "en_US": ("Hi", "Dear", "Thanks", "Best regards"),
    "en_GB": ("Hello", "Dear", "Cheers", "Kind regards"),
    "de_DE": ("Hallo", "Liebe", "Danke", "Viele Grüße"),
    "fr_FR": ("Bonjour", "Cher", "Merci", "Cordialement"),
    "es_ES": ("Hola", "Estimado", "Gracias", "Saludos"),
    "it_IT": ("Ciao", "Gentile", "Grazie", "Cordiali saluti"),
    "nl_NL": ("Hoi", "Beste", "Bedankt", "Met vriendelijke groet"),
    "pt_BR": ("Olá", "Prezado", "Obrigado", "Atenciosamente"),
    "pl_PL": ("Cześć", "Szanowny", "Dzięki", "Pozdrawiam"),
    "sv_SE": ("Hej", "Bästa", "Tack", "Med vänliga hälsningar"),
}
# Phone numbers as written in each country; "#" a digit, "N" 2-9 (NANP area and exchange).
PHONES = {
    "en_US": (
        "(N##) N##-####",
        "N##-N##-####",
        "+1 N##-N##-####",
        "N##.N##.####",
        "+1 (N##) N##-####",
    ),
    "en_GB": (
        "+44 20 7### ####",
        "07### ######",
        "020 7### ####",
        "+44 7### ######",
        "0161 ### ####",
    ),
    "de_DE": ("+49 30 #######", "030 #######", "0151 ########", "+49 (0)89 ######", "0172 #######"),
    "fr_FR": (
        "+33 1 ## ## ## ##",
        "06 ## ## ## ##",
        "01 ## ## ## ##",
        "+33 6 ## ## ## ##",
        "07 ## ## ## ##",
    ),
    "es_ES": ("+34 6## ### ###", "91# ### ###", "6## ## ## ##", "+34 91# ## ## ##", "93# ### ###"),
    "it_IT": (
        "+39 3## ### ####",
        "06 #### ####",
        "02 ### ####",
        "+39 02 #### ####",
        "3## ### ####",
    ),
    "nl_NL": ("+31 6 ########", "020 ### ####", "06-########", "+31 20 ### ####", "010 ### ####"),
    "pt_BR": (
        "+55 11 9####-####",
        "(11) 9####-####",
        "(21) 3###-####",
        "+55 (21) 9####-####",
        "11 9####-####",
    ),
    "pl_PL": (
        "+48 5## ### ###",
        "+48 22 ### ## ##",
        "6## ### ###",
        "22 ### ## ##",
        "+48 6## ### ###",
    ),
    "sv_SE": (
        "+46 8 ### ### ##",
        "07#-### ## ##",
        "08-### ### ##",
        "+46 70 ### ## ##",
        "031-### ## ##",
    ),
}
# Faker's it_IT city() iterates a set (order varies per process): cities from a fixed list.
CITIES = (
    "Lyon",
    "Leeds",
    "Porto",
    "Gdańsk",
    "Utrecht",
    "Malmö",
    "Bologna",
    "Sevilla",
    "Austin",
    "Köln",
)
CARD_TYPES = ("visa16", "mastercard", "amex", "discover", "jcb16", "visa19")
B62 = string.ascii_letters + string.digits


class Doc:
    """One sample under construction: ``put`` a value, get it back for the template."""

    def __init__(self, fake: Faker, fake_us: Faker, rng: random.Random, locale: str) -> None:
        self.fake, self.fake_us, self.rng, self.locale = fake, fake_us, rng, locale
        self.sensitive: list[tuple[str, str]] = []
        self.lookalikes: list[tuple[str, str]] = []

    def s(self, entity: str, value: str) -> str:
        self.sensitive.append((entity, value))
        return value

    def look(self, kind: str, value: str) -> str:
        self.lookalikes.append((kind, value))
        return value

    # --- sensitive values --------------------------------------------------------------
    def first(self) -> str:
        return self.s("PERSON", self.fake.first_name())

    def person(self) -> str:
        return self.s("PERSON", f"{self.fake.first_name()} {self.fake.last_name()}")

    def email(self, name: str | None = None) -> str:
        if name and self.rng.random() < 0.6:
            local = ".".join(name.lower().split()).encode("ascii", "ignore").decode()
            local = "".join(c for c in local if c.isalnum() or c == ".") or "someone"
            return self.s("EMAIL_ADDRESS", f"{local}@{self.fake.free_email_domain()}")
        return self.s("EMAIL_ADDRESS", self.fake.email())

    def phone(self) -> str:
        fmt = self.rng.choice(PHONES[self.locale])
        out = "".join(
            str(self.rng.randint(2, 9))
            if c == "N"
            else str(self.rng.randint(0, 9))
            if c == "#"
            else c
            for c in fmt
        )
        return self.s("PHONE_NUMBER", out)

    def card(self) -> str:
        number = self.fake.credit_card_number(card_type=self.rng.choice(CARD_TYPES))
        style = self.rng.random()
        if style < 0.4 and len(number) == 16:
            number = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        elif style < 0.55 and len(number) == 16:
            number = "-".join(number[i : i + 4] for i in range(0, 16, 4))
        return self.s("CREDIT_CARD", number)

    def iban(self) -> str:
        value = self.fake.iban()
        if self.rng.random() < 0.5:
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return self.s("IBAN_CODE", value)

    def ssn(self) -> str:
        return self.s("US_SSN", self.fake_us.ssn())

    def itin(self) -> str:
        return self.s("US_ITIN", self.fake_us.itin())

    def ip(self) -> str:
        return self.s(
            "IP_ADDRESS", self.fake.ipv4_public() if self.rng.random() < 0.8 else self.fake.ipv6()
        )

    def secret(self) -> str:
        r = self.rng
        kind = r.randrange(7)
        if kind == 0:
            value = "sk-proj-" + "".join(r.choice(B62) for _ in range(48))
        elif kind == 1:
            value = "AKIA" + "".join(
                r.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
        elif kind == 2:
            value = "ghp_" + "".join(r.choice(B62) for _ in range(36))
        elif kind == 3:
            value = "eyJhbGciOiJIUzI1NiJ9.eyJ" + _b64url(r, 60) + "." + _b64url(r, 43)
        elif kind == 4:
            value = "sk-ant-api03-" + "".join(r.choice(B62 + "-_") for _ in range(90))
        elif kind == 5:
            value = "xoxb-" + "-".join(
                "".join(r.choice(string.digits) for _ in range(12)) for _ in range(2)
            )
            value += "-" + "".join(r.choice(B62) for _ in range(24))
        else:
            value = "sk_live_" + "".join(r.choice(B62) for _ in range(24))
        return self.s("SECRET", value)

    def password(self) -> str:
        r = self.rng
        return self.s("SECRET", "".join(r.choice(B62 + "!#%&*") for _ in range(r.randint(10, 18))))

    # --- look-alikes -------------------------------------------------------------------
    def order(self) -> str:
        r = self.rng
        return self.look(
            "order_id",
            r.choice(
                [f"ORD-{r.randint(2019, 2026)}-{r.randint(100000, 999999)}",
                 f"#{r.randint(10000000, 99999999)}", f"PO-{r.randint(1000, 9999)}-{r.randint(10, 99)}",
                 f"{r.randint(100, 999)}-{r.randint(1000000, 9999999)}-{r.randint(1000000, 9999999)}"]
            ),
        )  # fmt: skip

    def version(self) -> str:
        r = self.rng
        return self.look("version", f"{r.randint(0, 12)}.{r.randint(0, 40)}.{r.randint(0, 200)}")

    def date(self) -> str:
        fmt = self.rng.choice(
            ["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%SZ"]
        )
        when = self.fake.date_time_between(datetime(2019, 1, 1), datetime(2026, 1, 1))
        return self.look("date", when.strftime(fmt))

    def size(self) -> str:
        r = self.rng
        return self.look(
            "size",
            r.choice(
                [
                    f"{r.randint(1, 4096)} MB",
                    f"{r.randint(1000, 99999999)} bytes",
                    f"{r.randint(1, 64)} GiB",
                ]
            ),
        )

    def hash(self) -> str:
        return self.look(
            "hash", self.rng.choice([self.fake.sha1(), self.fake.md5(), self.fake.sha256()])
        )

    def uuid(self) -> str:
        return self.look("uuid", self.fake.uuid4())

    def amount(self) -> str:
        r = self.rng
        return self.look(
            "amount",
            r.choice(
                [
                    f"{r.randint(1, 99999)},{r.randint(10, 99)} EUR",
                    f"${r.randint(1, 99999):,}.{r.randint(10, 99)}",
                ]
            ),
        )

    def isbn(self) -> str:
        return self.look("isbn", self.fake.isbn13())

    def epoch(self) -> str:
        return self.look("timestamp", str(self.rng.randint(1500000000, 1800000000)))

    def sku(self) -> str:
        r = self.rng
        return self.look(
            "sku", f"SKU-{r.randint(10000, 99999)}-{r.choice(['BLK', 'RED', 'XL', 'S'])}"
        )

    def tracking(self) -> str:
        r = self.rng
        return self.look(
            "tracking",
            "1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        )

    def port(self) -> str:
        return self.look("port", str(self.rng.choice([8080, 5432, 6379, 443, 3000, 9200])))


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _b64url(r: random.Random, n: int) -> str:
    return base64.urlsafe_b64encode(bytes(r.randrange(256) for _ in range(n))).decode().rstrip("=")


def _hello(d: Doc) -> tuple[str, str, str, str]:
    return HELLO[d.locale]


# --- the 20 document shapes ----------------------------------------------------------------


def ticket(d: Doc) -> str:
    hi, _, thanks, _ = _hello(d)
    name = d.person()
    return (
        f"[Ticket {d.order()}] Login fails after update {d.version()}\n"
        f"{hi} support, this is {name}. Since {d.date()} I can't sign in.\n"
        f"Contact me at {d.email(name)} or {d.phone()}. Attachment: screenshot.png ({d.size()}).\n"
        f"{thanks}, {name.split()[0]}"
    )


def email(d: Doc) -> str:
    _, dear, _, regards = _hello(d)
    sender, to = d.person(), d.person()
    return (
        f"From: {sender} <{d.email(sender)}>\nTo: {to} <{d.email(to)}>\n"
        f"Subject: Invoice {d.order()} - {d.amount()}\n\n{dear} {to.split()[0]},\n"
        f"please find the invoice attached. The payment to {d.iban()} is due on {d.date()}.\n"
        f"{regards},\n{sender}"
    )


def log_line(d: Doc) -> str:
    return (
        f"{d.date()} INFO api request_id={d.uuid()} user_email={d.email()} ip={d.ip()} "
        f"status=200 latency_ms={d.rng.randint(3, 900)} size={d.size().split()[0]}"
    )


def json_record(d: Doc) -> str:
    name = d.person()
    return json.dumps(
        {
            "id": d.uuid(),
            "customer": {"name": name, "email": d.email(name), "phone": d.phone()},
            "payment": {"card_number": d.card(), "amount": d.amount()},
            "order": d.order(),
            "created": d.date(),
        },
        ensure_ascii=False,
        indent=1,
    )


def csv_table(d: Doc) -> str:
    rows = ["full_name,email,phone,city,last_order"]
    for _ in range(3):
        name = d.person()
        rows.append(f"{name},{d.email(name)},{d.phone()},{d.rng.choice(CITIES)},{d.order()}")
    return "\n".join(rows)


def sql(d: Doc) -> str:
    name, name2 = d.person(), d.person()
    return (
        "INSERT INTO customers (id, full_name, email, phone, iban) VALUES\n"
        f"  ({d.rng.randint(1, 9999)}, '{name}', '{d.email(name)}', '{d.phone()}', '{d.iban()}'),\n"
        f"  ({d.rng.randint(1, 9999)}, '{name2}', '{d.email(name2)}', '{d.phone()}', '{d.iban()}');\n"
        f"-- migration {d.version()} applied {d.date()}"
    )


def contract(d: Doc) -> str:
    party = d.person()
    return (
        f"This Agreement is made on {d.date()} between {d.fake.company()} and {party}, "
        f"residing at {d.fake.street_address()}, reachable by telephone at {d.phone()}. "
        f"Payments shall be made to the account {d.iban()}. Reference {d.order()}."
    )


def chat(d: Doc) -> str:
    hi, _, thanks, _ = _hello(d)
    first = d.first()
    return (
        f"{hi}! {first} here 🙂 can you text me on {d.phone()} when the parcel "
        f"{d.tracking()} arrives? {thanks}!"
    )


def yaml_config(d: Doc) -> str:
    return (
        f"service:\n  version: {d.version()}\n  port: {d.port()}\n"
        f'  owner: {d.person()}\n  contact_phone: "{d.phone()}"\n'
        f"  api_key: {d.secret()}\n  upstream: {d.ip()}\n  checksum: {d.hash()}"
    )


def kv_log(d: Doc) -> str:
    return (
        f'level=warn msg="payment declined" card={d.card()} amount={d.amount().split()[0]} '
        f"order={d.order()} ts={d.epoch()} trace={d.hash()}"
    )


def hr_record(d: Doc) -> str:
    name = d.person()
    return (
        f"Employee: {name}\nSSN: {d.ssn()}\nStart date: {d.date()}\n"
        f"Salary account (IBAN): {d.iban()}\nBadge: {d.order()}"
    )


def tax_form(d: Doc) -> str:
    name = d.person()
    return (
        f"W-7 applicant {name} was assigned ITIN {d.itin()} on {d.date()}; "
        f"spouse's SSN {d.ssn()}. Case {d.order()}, form revision {d.version()}."
    )


def medical_note(d: Doc) -> str:
    return (
        f"Patient: {d.person()}, seen on {d.date()}. Call-back number {d.phone()}. "
        f"Dr. {d.s('PERSON', d.fake.last_name())} prescribed 20 mg. Lab ref {d.order()}."
    )


def meeting_notes(d: Doc) -> str:
    a, b = d.person(), d.person()
    return (
        f"Meeting notes {d.date()}\nAttendees: {a}, {b}\n"
        f"- {a.split()[0]} will share the deck ({d.size()}) by Friday\n"
        f"- release {d.version()} blocked on build {d.hash()[:12]}"
    )


def translation(d: Doc) -> str:
    name = d.person()
    return (
        f'Please translate into English: "{_hello(d)[1]} {name}, your order {d.order()} '
        f'was shipped on {d.date()}. Questions? Write to {d.email(name)}."'
    )


def code_snippet(d: Doc) -> str:
    return (
        "```python\nimport os\n"
        f'client = Client(api_key="{d.secret()}", timeout=30)\n'
        f'DB_URL = "postgresql://app:{d.password()}@{_host(d.ip())}:5432/prod"\n'
        f"# pinned to {d.version()}, sha {d.hash()}\n```"
    )


def stack_trace(d: Doc) -> str:
    return (
        f'Traceback (most recent call last):\n  File "/srv/app/handlers.py", line {d.rng.randint(10, 900)}\n'
        f"ValueError: could not charge card {d.card()} for user {d.email()} (order {d.order()})"
    )


def form_submission(d: Doc) -> str:
    name = d.person()
    return (
        f"name={name}&email={d.email(name)}&tel={d.phone()}&zip={d.look('postcode', d.fake.postcode())}"
        f"&product={d.sku()}&qty=2"
    )


def bank_transfer(d: Doc) -> str:
    return (
        f"Transfer {d.amount()} from {d.iban()} to {d.iban()} on {d.date()}, "
        f"ordered by {d.person()}. Bank reference {d.order()}."
    )


def calendar(d: Doc) -> str:
    org = d.person()
    return (
        f"BEGIN:VEVENT\nSUMMARY:Review {d.version()}\nDTSTART:{d.date()}\n"
        f"ORGANIZER;CN={org}:mailto:{d.email(org)}\nATTENDEE;CN={d.person()}:mailto:{d.email()}\n"
        f"LOCATION:Room {d.rng.randint(100, 999)}\nEND:VEVENT"
    )


def sms(d: Doc) -> str:
    _, _, thanks, _ = _hello(d)
    return (
        f"Your code for order {d.order()} is ready. Card ending {d.card()} charged {d.amount()}. "
        f"{thanks}, {d.first()}. Questions: {d.phone()}"
    )


def book_order(d: Doc) -> str:
    name = d.person()
    return (
        f"{name} ordered ISBN {d.isbn()} ({d.size()} e-book) on {d.date()} "
        f"from {d.ip()}; receipt sent to {d.email(name)}."
    )


SHAPES: dict[str, Callable[[Doc], str]] = {
    f.__name__: f
    for f in (
        ticket, email, log_line, json_record, csv_table, sql, contract, chat, yaml_config,
        kv_log, hr_record, tax_form, medical_note, meeting_notes, translation, code_snippet,
        stack_trace, form_submission, bank_transfer, calendar, sms, book_order,
    )
}  # fmt: skip


def generate() -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    for li, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(1000 + li)
        fake_us = Faker("en_US")
        fake_us.seed_instance(2000 + li)
        rng = random.Random(3000 + li)
        for shape, make in SHAPES.items():
            for i in range(PER_SHAPE_AND_LOCALE):
                d = Doc(fake, fake_us, rng, locale)
                text = make(d)
                sensitive = [[e, v] for e, v in dict.fromkeys(d.sensitive) if v in text]
                lookalikes = [
                    [k, v]
                    for k, v in dict.fromkeys(d.lookalikes)
                    if v in text and not any(v in s or s in v for _, s in sensitive)
                ]
                samples.append(
                    {
                        "id": f"{shape}-{locale}-{i}",
                        "text": text,
                        "sensitive": sensitive,
                        "lookalikes": lookalikes,
                    }
                )
    return samples


def main() -> None:
    samples = generate()
    OUT.write_text(json.dumps(samples, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(samples)} samples, {len(LOCALES)} locales, {len(SHAPES)} shapes -> {OUT}")


if __name__ == "__main__":
    main()
