"""Normalisation and SHA-256 hashing of personal data, exactly as each ad platform documents it.

Meta (Custom Audiences multi-key schema, "Hashing and Normalizing Data"):
  EMAIL    trim, lowercase
  PHONE    digits only (symbols, letters, leading zeros removed), country code included, no '+'
  FN, LN   lowercase, no punctuation or spaces; non-Latin letters kept as UTF-8 ("Valéry" -> "valéry")
  CT       lowercase letters only, no punctuation, no spaces ("Menlo Park" -> "menlopark")
  ST       US: 2-letter ANSI code, lowercase; elsewhere lowercase letters only
  ZIP      lowercase, no spaces; US: first 5 digits only
  COUNTRY  2-letter ISO 3166-1 alpha-2, lowercase
  MADID    lowercase, hyphens kept, NOT hashed
  EXTERN_ID as given (trimmed), NOT hashed
  GEN      'f' or 'm' (anything else is not sent)
  DOBY     year, 4 digits (YYYY);  DOBM  month, 2 digits (01-12);  DOBD  day, 2 digits (01-31)
(https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash)

Google (Data Manager API, "Format user data",
https://developers.google.com/data-manager/api/devguides/concepts/formatting):
  email    all whitespace removed, lowercase; gmail.com / googlemail.com: dots before '@'
           removed, and a '+' in the local part removed with everything after it
           ("cloudy.sanfrancisco+shopping@gmail.com" -> "cloudysanfrancisco@gmail.com");
           other domains keep their dots and '+'
  (Customer Match user data has no gender or date-of-birth identifier: those are not sent)
  phone    E.164: '+', country code, digits only
  names    trim, lowercase (address identifiers); region_code and postal_code not hashed
Hashes are lowercase hex SHA-256 of the UTF-8 bytes of the normalised value.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"[^0-9]")

US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc",
    "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il",
    "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm", "newyork": "ny",
    "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or",
    "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd",
    "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va",
    "washington": "wa", "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "puertorico": "pr",
}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _letters(value: str) -> str:
    """Lowercase letters only (any script), NFC-composed so 'é' hashes the same either way typed."""
    value = unicodedata.normalize("NFC", value).lower()
    return "".join(ch for ch in value if ch.isalpha())


# -- Meta --------------------------------------------------------------------------------------
def meta_email(value: str) -> str:
    return value.strip().lower()


def meta_phone(value: str) -> str:
    """Digits only, leading zeros (e.g. the '00' international prefix) removed, no '+'."""
    return _NON_DIGIT.sub("", value).lstrip("0")


def meta_name(value: str) -> str:
    return _letters(value)


def meta_city(value: str) -> str:
    return _letters(value)


def meta_state(value: str, country: str | None = None) -> str:
    letters = _letters(value)
    if (meta_country(country) if country else "us") == "us":
        return US_STATES.get(letters, letters)
    return letters


def meta_zip(value: str, country: str | None = None) -> str:
    compact = _WHITESPACE.sub("", value).lower()
    country_code = meta_country(country) if country else ""
    if country_code == "us" or (not country_code and re.fullmatch(r"\d{5}(-?\d{4})?", compact)):
        return _NON_DIGIT.sub("", compact)[:5]
    return compact


def meta_country(value: str) -> str:
    letters = "".join(ch for ch in value.lower() if "a" <= ch <= "z")
    return letters if len(letters) == 2 else ""


def meta_madid(value: str) -> str:
    return value.strip().lower()


def meta_extern_id(value: str) -> str:
    return value.strip()


_GENDERS = {"f": "f", "female": "f", "woman": "f", "w": "f", "m": "m", "male": "m", "man": "m"}
_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})")


def meta_gender(value: str) -> str:
    return _GENDERS.get(value.strip().lower(), "")


def _date_part(value: str, index: int) -> str:
    """One part of an ISO date of birth (YYYY-MM-DD[...]); '' when it is not a real date."""
    match = _DATE.match(value)
    if not match:
        return ""
    year, month, day = (int(p) for p in match.groups())
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return ""
    return (f"{year:04d}", f"{month:02d}", f"{day:02d}")[index]


def meta_birth_year(value: str) -> str:
    return _date_part(value, 0)


def meta_birth_month(value: str) -> str:
    return _date_part(value, 1)


def meta_birth_day(value: str) -> str:
    return _date_part(value, 2)


# Key -> (normaliser, hashed?). The normaliser for ST and ZIP also receives the country.
META_KEYS = {
    "EMAIL": (meta_email, True),
    "PHONE": (meta_phone, True),
    "FN": (meta_name, True),
    "LN": (meta_name, True),
    "CT": (meta_city, True),
    "ST": (meta_state, True),
    "ZIP": (meta_zip, True),
    "COUNTRY": (meta_country, True),
    "MADID": (meta_madid, False),
    "EXTERN_ID": (meta_extern_id, False),
    "GEN": (meta_gender, True),
    "DOBY": (meta_birth_year, True),
    "DOBM": (meta_birth_month, True),
    "DOBD": (meta_birth_day, True),
}


def meta_value(key: str, value: str | None, country: str | None = None) -> str:
    """Normalise and (where Meta requires it) hash one value for a multi-key row; '' when absent."""
    if value is None or not str(value).strip():
        return ""
    normalise, hashed = META_KEYS[key]
    normal = normalise(str(value), country) if key in ("ST", "ZIP") else normalise(str(value))
    if not normal:
        return ""
    return sha256_hex(normal) if hashed else normal


# -- Google ------------------------------------------------------------------------------------
def google_email(value: str) -> str:
    email = _WHITESPACE.sub("", value).lower()
    local, at, domain = email.rpartition("@")
    if at and domain in ("gmail.com", "googlemail.com"):
        email = local.split("+", 1)[0].replace(".", "") + "@" + domain
    return email


def google_phone(value: str) -> str:
    """E.164 with '+': '00' international prefix becomes '+', formatting characters dropped."""
    value = value.strip()
    digits = _NON_DIGIT.sub("", value)
    if not value.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    return "+" + digits if digits else ""


def google_name(value: str) -> str:
    return value.strip().lower()


def google_hash(kind: str, value: str | None) -> str:
    """Normalise and hash an email, phone or name for the Data Manager API; '' when absent."""
    if value is None or not str(value).strip():
        return ""
    normal = {"email": google_email, "phone": google_phone, "name": google_name}[kind](str(value))
    return sha256_hex(normal) if normal else ""
