"""Identifiers and personal data are never features: by name and by what the values look like.

A user id, an order number, an email address, a phone number or a postal code says who or where
someone is, not what they will do: as a feature it lets a model memorise individuals (and a zip
code read as a number pretends that 10001 is "more" than 10000). A name is refused when one of
its words (split at `_`, `-`, `.`, spaces and camelCase) is an identifier or personal word; a
sample of values is refused when most of them look like emails, phone numbers, postal codes,
UUIDs, or when whole numbers are nearly all distinct (a counter such as an order id).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

NAME_WORDS = {
    "id", "ids", "uid", "uuid", "guid", "token", "hash", "sku", "ean", "upc", "isbn", "barcode", "serial",
    "email", "mail", "phone", "mobile", "tel", "telephone", "fax", "msisdn", "zip", "zipcode", "postcode",
    "postal", "postalcode", "address", "street", "ip", "ssn", "iban", "passport", "firstname", "lastname",
    "surname", "username", "login", "password", "latitude", "longitude", "lat", "lng", "idfa", "gaid", "imei",
}
# Words that identify only as the whole name ("plan_name" or "order_state" are fine features).
WHOLE_NAMES = {"name", "full_name", "first_name", "last_name", "city", "state", "external_ids", "key",
               "dob", "birthdate", "birth_date", "date_of_birth"}
# An identifier's number: order_number, customer_no, account_nr (but not number_of_items).
NUMBERED = re.compile(r"_(number|no|nr|num|ref|reference)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().\-]{6,22}[0-9]$")
POSTAL = re.compile(r"^(?:\d{5}(?:-\d{4})?|\d{4}|\d{6}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|"
                    r"\d{3}-\d{4}|\d{2}-\d{3})$", re.IGNORECASE)
UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)
LOOKS_PERSONAL = 0.5      # share of sampled strings matching a personal pattern
DISTINCT_INTEGERS = 0.9   # share of distinct whole numbers that marks a counter or identifier
MIN_VALUES_TO_JUDGE = 20  # fewer values than this say nothing about distinctness


def name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[\s_.\-:/]+", spaced.lower()) if w]


def identifying_name(name: str) -> bool:
    """True for names such as user_id, orderId, zip_code, Email, billing-address, phone_number."""
    words = name_words(name)
    joined = "_".join(words)
    if any(w in NAME_WORDS for w in words) or "".join(words) in NAME_WORDS or joined in WHOLE_NAMES:
        return True
    return len(words) > 1 and bool(NUMBERED.search(joined))


def identifying_values(values: Sequence[Any]) -> bool:
    """True when a sample of one attribute's (or property's) values looks like identifiers or
    personal data."""
    strings = [v.strip() for v in values if isinstance(v, str)]
    if strings:
        personal = sum(1 for v in strings if EMAIL.match(v) or PHONE.match(v) or POSTAL.match(v) or UUID.match(v))
        if personal >= LOOKS_PERSONAL * len(strings):
            return True
    integers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)
                or isinstance(v, float) and v.is_integer()]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(integers) >= MIN_VALUES_TO_JUDGE and len(integers) >= 0.9 * len(numbers):
        large = [v for v in integers if abs(v) >= 1000]  # small whole numbers (age, quantity) repeat
        if len(large) >= 0.9 * len(integers) and len(set(integers)) >= DISTINCT_INTEGERS * len(integers):
            return True
    return False


def never_a_feature(name: str, values: Sequence[Any]) -> bool:
    return identifying_name(name) or identifying_values(values)
