"""One cleansing path for every way a customer arrives (API, bulk API, admin CSV import).

Two outcomes for a bad value:
- a *rejected* field (wrong type, too long, unknown field, a malformed unsubscribe date): the
  row is reported back by field and reason and nothing of it is stored;
- a *flagged* field (birthday "unknown", an email or phone that does not parse, an unknown
  timezone): the row is stored with the value null/blank (or the default zone) and a
  data-quality flag `{"field", "code", "value"}`, so one bad birthday never stops a sync.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from core.text import has_control_characters
from segments.models import SYNCED_FIELDS

MAX_ATTRIBUTES = 100
MAX_TAGS = 100
MAX_TAG_LENGTH = 100
OLDEST_BIRTHDAY = dt.date(1900, 1, 1)
TEXT_LIMITS = {
    "external_id": 128,
    "name": 200,
    "locale": 16,
    "level": 32,
    "wechat_openid": 64,
}
BOOLEAN_FIELDS = ("email_consent", "sms_consent", "wechat_consent")
FIELDS = frozenset(SYNCED_FIELDS)
TRUE_TEXT = {"true", "1", "yes", "y"}
FALSE_TEXT = {"false", "0", "no", "n", ""}


@dataclass
class CleanRow:
    """A row after cleansing: `values` to store (only the fields the row carried), `flags`
    for those fields, `errors` that reject the row."""

    values: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None
    flags: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def external_id(self) -> str:
        return self.values.get("external_id", "")

    def reject(self, field_name: str, code: str, message: str) -> None:
        self.errors.append({"field": field_name, "code": code, "message": message})

    def flag(self, field_name: str, code: str, value: Any) -> None:
        self.flags.append({"field": field_name, "code": code, "value": _printable(value)})


def _printable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """Zones both Python and PostgreSQL know: segment SQL reads them with AT TIME ZONE."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_timezone_names")
        database_zones = {row[0] for row in cursor.fetchall()}
    return frozenset(zoneinfo.available_timezones() & database_zones)


def default_phone_region() -> str:
    return getattr(settings, "GAMBIT_DEFAULT_PHONE_REGION", "CN")


def clean_customer_row(row: Any) -> CleanRow:
    """Cleanse one incoming customer record (a dict of field -> value)."""
    result = CleanRow()
    if not isinstance(row, dict):
        result.reject("", "invalid_type", _("Expected an object of customer fields."))
        return result
    for name in sorted(set(row) - FIELDS):
        result.reject(name, "unknown_field", _("Unknown field %(name)r.") % {"name": name})
    for name, value in row.items():
        if name in FIELDS:
            _CLEANERS[name](result, name, value)
    if "external_id" not in row:
        result.reject("external_id", "required", _("external_id is required."))
    return result


def _text(result: CleanRow, name: str, value: Any) -> None:
    if value is None:
        value = ""
    if isinstance(value, int) and not isinstance(value, bool) and name == "external_id":
        value = str(value)
    if not isinstance(value, str):
        result.reject(name, "invalid_type", _("%(name)s must be a string.") % {"name": name})
        return
    value = value.strip()
    if name == "external_id" and not value:
        result.reject(name, "required", _("external_id may not be blank."))
        return
    if name == "external_id" and has_control_characters(value):
        result.reject(
            name, "control_characters", _("external_id may not contain control characters.")
        )
        return
    if len(value) > TEXT_LIMITS[name]:
        result.reject(
            name,
            "too_long",
            _("%(name)s may have at most %(limit)d characters.")
            % {"name": name, "limit": TEXT_LIMITS[name]},
        )
        return
    if name == "locale":
        value = value.replace("_", "-")
    result.values[name] = value


def _boolean(result: CleanRow, name: str, value: Any) -> None:
    if isinstance(value, bool):
        result.values[name] = value
    elif isinstance(value, str) and value.strip().lower() in TRUE_TEXT | FALSE_TEXT:
        result.values[name] = value.strip().lower() in TRUE_TEXT
    else:
        result.reject(name, "invalid_type", _("%(name)s must be true or false.") % {"name": name})


def _email(result: CleanRow, name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        result.values[name] = ""
        return
    if not isinstance(value, str):
        result.reject(name, "invalid_type", _("email must be a string."))
        return
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        result.values[name] = ""
        result.flag(name, "invalid_email", value)
        return
    result.values[name] = email


def _phone(result: CleanRow, name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        result.values[name] = ""
        return
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        result.reject(name, "invalid_type", _("phone must be a string."))
        return
    try:
        number = phonenumbers.parse(value, default_phone_region())
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        result.values[name] = ""
        result.flag(name, "invalid_phone", value)
        return
    result.values[name] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _birthday(result: CleanRow, name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        result.values[name] = None
        return
    try:
        birthday = parse_date(value.strip()) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. 1990-13-45
        birthday = None
    if birthday is None:
        code = "invalid_date"
    elif birthday > timezone.localdate():
        code = "future_date"
    elif birthday < OLDEST_BIRTHDAY:
        code = "implausible_date"
    else:
        result.values[name] = birthday
        return
    result.values[name] = None
    result.flag(name, code, value)


def _timezone(result: CleanRow, name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        result.values[name] = ""
        return
    if isinstance(value, str) and value.strip() in known_timezones():
        result.values[name] = value.strip()
        return
    result.values[name] = settings.GAMBIT_DEFAULT_TIMEZONE
    result.flag(name, "unknown_timezone", value)


def _datetime(result: CleanRow, name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        result.values[name] = None
        return
    try:
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
        if parsed is not None:
            if timezone.is_naive(parsed):
                parsed = parsed.replace(tzinfo=dt.UTC)
            # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python reads happily.
            parsed = parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        result.reject(
            name,
            "invalid_datetime",
            _("%(name)s must be a date-time such as 2026-01-31T10:00:00Z.") % {"name": name},
        )
        return
    result.values[name] = parsed


def _attributes(result: CleanRow, name: str, value: Any) -> None:
    if value is None:
        value = {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            result.reject(name, "invalid_json", _("attributes must be a JSON object."))
            return
    if not isinstance(value, dict):
        result.reject(name, "invalid_type", _("attributes must be an object."))
        return
    if len(value) > MAX_ATTRIBUTES:
        result.reject(
            name,
            "too_many",
            _("attributes may have at most %(max)d keys.") % {"max": MAX_ATTRIBUTES},
        )
        return
    result.values[name] = value


def _tags(result: CleanRow, name: str, value: Any) -> None:
    if value is None:
        value = []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        result.reject(name, "invalid_type", _("tags must be a list of tag codes."))
        return
    codes = sorted({item.strip() for item in value if item.strip()})
    if len(codes) > MAX_TAGS:
        result.reject(
            name, "too_many", _("A customer may have at most %(max)d tags.") % {"max": MAX_TAGS}
        )
        return
    if any(len(code) > MAX_TAG_LENGTH for code in codes):
        result.reject(
            name,
            "too_long",
            _("A tag code may have at most %(max)d characters.") % {"max": MAX_TAG_LENGTH},
        )
        return
    result.tags = codes


_CLEANERS = {
    **dict.fromkeys(TEXT_LIMITS, _text),
    **dict.fromkeys(BOOLEAN_FIELDS, _boolean),
    "email": _email,
    "phone": _phone,
    "birthday": _birthday,
    "timezone": _timezone,
    "unsubscribed_at": _datetime,
    "attributes": _attributes,
    "tags": _tags,
}


def merged_flags(
    previous: list[dict[str, Any]] | None, row_fields: set[str], new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Flags after a sync: those of fields the row carried are replaced by the new ones."""
    kept = [flag for flag in previous or [] if flag.get("field") not in row_fields]
    return kept + new
