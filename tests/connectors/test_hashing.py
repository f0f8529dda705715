"""Normalisation and hashing: the platforms' published examples, then invariants with hypothesis."""
from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.hashing import (
    google_email,
    google_hash,
    google_phone,
    meta_city,
    meta_country,
    meta_email,
    meta_name,
    meta_phone,
    meta_state,
    meta_value,
    meta_zip,
    sha256_hex,
)

# -- published examples -----------------------------------------------------------------------
# Meta, "Customer Information Parameters" (same normalisation as Custom Audiences).
META_EXAMPLES = [
    (meta_email, "John_Smith@gmail.com", "john_smith@gmail.com",
     "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    (meta_phone, "+1 (650)555-1212", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    (meta_name, "Mary", "mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    (meta_name, "정", "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
    (meta_name, "Valéry", "valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
]

# Google, Data Manager API quickstart "Send audience members" (hex-encoded).
GOOGLE_EXAMPLES = [
    ("dana@example.com", "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3"),
    ("DanaM@example.com", "1df6b43bc68dd38eca94e6a65b4f466ae537b796c81a526918b40ac4a7b906c7"),
]


@pytest.mark.parametrize("normalise,raw,normal,digest", META_EXAMPLES)
def test_meta_published_examples(normalise, raw, normal, digest):
    assert normalise(raw) == normal
    assert sha256_hex(normalise(raw)) == digest


@pytest.mark.parametrize("raw,digest", GOOGLE_EXAMPLES)
def test_google_published_examples(raw, digest):
    assert google_hash("email", raw) == digest


def test_google_documented_formats():
    assert google_phone("+1 (800)555-0100") == "+18005550100"  # the documented example
    assert google_email(" Jane.Doe@GMAIL.com ") == "janedoe@gmail.com"
    assert google_email("jane.doe@googlemail.com") == "janedoe@googlemail.com"
    assert google_email("jane.doe@example.com") == "jane.doe@example.com"  # dots kept elsewhere
    assert google_email("j ane@example.com") == "jane@example.com"  # intermediate whitespace too
    # The +suffix rule of https://developers.google.com/data-manager/api/devguides/concepts/formatting:
    assert google_email("cloudy.sanfrancisco+shopping@gmail.com") == "cloudysanfrancisco@gmail.com"
    assert google_email("Jane.Doe+news@googlemail.com") == "janedoe@googlemail.com"
    assert google_email("user.name+NYC@Example.com") == "user.name+nyc@example.com"  # kept elsewhere


def test_meta_gender_and_date_of_birth_keys():
    """GEN 'f'/'m'; DOBY 'YYYY', DOBM 'MM', DOBD 'DD', all SHA-256 (Meta, "Hashing and Normalizing
    Data", https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences)."""
    assert meta_value("GEN", " Female ") == sha256_hex("f") and meta_value("GEN", "M") == sha256_hex("m")
    assert meta_value("GEN", "unknown") == ""  # never a guess
    assert meta_value("DOBY", "1987-03-09") == sha256_hex("1987")
    assert meta_value("DOBM", "1987-3-9") == sha256_hex("03")
    assert meta_value("DOBD", "1987-03-09T00:00:00Z") == sha256_hex("09")
    assert meta_value("DOBM", "09/03/1987") == "" and meta_value("DOBD", "1987-13-40") == ""


def test_phone_hashes_differ_between_meta_and_google():
    number = "+1 (800) 555-0100"
    assert meta_phone(number) == "18005550100"  # digits only, no '+'
    assert google_phone(number) == "+18005550100"  # E.164 with '+'
    assert meta_value("PHONE", number) == sha256_hex("18005550100")
    assert google_hash("phone", number) == sha256_hex("+18005550100")
    assert meta_value("PHONE", number) != google_hash("phone", number)
    assert meta_phone("0044 20 7031 3000") == "442070313000"  # '00' prefix dropped
    assert google_phone("0044 20 7031 3000") == "+442070313000"


def test_meta_keys_follow_meta_rules():
    assert meta_city("Menlo Park") == "menlopark"
    assert meta_state("California") == "ca" and meta_state(" CA ") == "ca"
    assert meta_state("Île-de-France", "FR") == "îledefrance"
    assert meta_zip("94025-1234", "US") == "94025" and meta_zip("94025") == "94025"
    assert meta_zip("SW1A 1AA", "GB") == "sw1a1aa"
    assert meta_country(" US ") == "us" and meta_country("United States") == ""
    assert meta_value("MADID", "AECE52E7-03EE-455A") == "aece52e7-03ee-455a"  # never hashed
    assert meta_value("EXTERN_ID", " crm-1 ") == "crm-1"
    assert meta_value("EMAIL", None) == "" and meta_value("EMAIL", "   ") == ""


# -- invariants ---------------------------------------------------------------------------------
local = st.text(alphabet=string.ascii_letters + string.digits + "._-+", min_size=1, max_size=20)
domains = st.sampled_from(["example.com", "gmail.com", "googlemail.com", "Shop.Co.UK"])
emails = st.builds(lambda name, domain: f"{name}@{domain}", local, domains)
spaces = st.text(alphabet=" \t\n", max_size=3)
phones = st.text(alphabet=string.digits, min_size=6, max_size=14)
formatting = st.lists(st.sampled_from([" ", "-", "(", ")", "."]), max_size=6)
names = st.text(alphabet=string.ascii_letters + " .'-", min_size=1, max_size=30)

IDEMPOTENT = [meta_email, google_email, meta_phone, meta_name, meta_city, meta_country, meta_zip,
              meta_state]


@given(st.text(max_size=40))
def test_every_normaliser_is_idempotent(value):
    for normalise in IDEMPOTENT:
        once = normalise(value)
        assert normalise(once) == once
    assert google_phone(google_phone(value)) == google_phone(value) or google_phone(value) == ""


@given(emails, spaces, spaces)
def test_emails_ignore_case_and_surrounding_whitespace(email, before, after):
    for normalise in (meta_email, google_email):
        assert normalise(before + email.upper() + after) == normalise(email.lower())


@given(emails, st.integers(min_value=0, max_value=20))
def test_google_ignores_intermediate_whitespace(email, at):
    at = min(at, len(email))
    assert google_email(email[:at] + " " + email[at:]) == google_email(email)


@given(local, st.sampled_from(["gmail.com", "googlemail.com"]), st.integers(0, 20))
def test_gmail_dots_do_not_matter_to_google(name, domain, at):
    at = min(at, len(name))
    dotted = name[:at] + "." + name[at:]
    assert google_email(f"{dotted}@{domain}") == google_email(f"{name}@{domain}")


@given(phones, formatting)
def test_phone_formatting_characters_do_not_matter(digits, extra):
    formatted = "".join(ch + (extra[i] if i < len(extra) else "") for i, ch in enumerate(digits))
    assert meta_phone(formatted) == meta_phone(digits)
    assert google_phone("+" + formatted) == google_phone("+" + digits)
    assert re.fullmatch(r"\+\d+", google_phone("+" + formatted))
    assert not meta_phone(formatted).startswith("0")


@given(names)
def test_meta_names_are_case_and_punctuation_insensitive(name):
    assert meta_name(name.upper()) == meta_name(name.lower()) == meta_name(f" {name}. ")
    assert re.fullmatch(r"[a-z]*", meta_name(name))


@given(st.text(min_size=1, max_size=40))
def test_hashes_are_lowercase_sha256_hex(value):
    for digest in (google_hash("email", value), meta_value("EMAIL", value)):
        assert digest == "" or re.fullmatch(r"[0-9a-f]{64}", digest)
