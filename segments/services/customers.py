"""Writes to the audience: customers first seen in events, synced profiles, tags, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.aggregates import StringAgg
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import gettext as _

from core.db.compiled_queries import CompiledQuery
from core.text import formula_safe, unescape_formula
from segments.errors import InvalidCustomer, TooManyRows
from segments.models import SYNCED_FIELDS, Customer, CustomerTag, Tag
from segments.services.cleansing import CleanRow, clean_customer_row, merged_flags

MAX_BULK_ROWS = 10_000
CSV_COLUMNS = list(SYNCED_FIELDS)


def ensure_customer(*, external_id: str) -> Customer:
    """The customer with this storefront id, created bare on first sight."""
    customer, _created = Customer.objects.get_or_create(external_id=external_id)
    return customer


_CUSTOMER_ID = CompiledQuery(
    lambda external_id: Customer.objects.filter(external_id=external_id).values_list("pk")[:1],
    external_id=str,
)


def ensure_customer_id(*, external_id: str) -> int:
    """`ensure_customer(...).pk`; every storefront event asks, so the lookup runs precompiled
    and reads one column."""
    found = _CUSTOMER_ID.rows(external_id=external_id)
    return found[0][0] if found else ensure_customer(external_id=external_id).pk


@dataclass
class BulkResult:
    received: int = 0
    stored: int = 0
    # [{"index", "external_id", "errors": [{"field", "code", "message"}]}]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # [{"index", "external_id", "flags": [{"field", "code", "value"}]}]
    flagged: list[dict[str, Any]] = field(default_factory=list)


def bulk_upsert_customers(*, rows: list[Any]) -> BulkResult:
    """Cleanse and upsert up to MAX_BULK_ROWS customers in one transaction. Bad rows are
    reported by index and never stop the good ones; more rows than allowed stores nothing."""
    if len(rows) > MAX_BULK_ROWS:
        raise TooManyRows(
            f"A bulk call takes at most {MAX_BULK_ROWS} customers; this one has {len(rows)}. "
            "Split it into several calls."
        )
    result = BulkResult(received=len(rows))
    accepted: list[tuple[int, CleanRow, set[str]]] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        clean = clean_customer_row(row)
        if not clean.errors and clean.external_id in seen:
            clean.reject(
                "external_id",
                "duplicate",
                _("The same external_id is also at index %(index)d.")
                % {"index": seen[clean.external_id]},
            )
        if clean.errors:
            result.rejected.append(
                {
                    "index": index,
                    "external_id": row.get("external_id") if isinstance(row, dict) else None,
                    "errors": clean.errors,
                }
            )
            continue
        seen[clean.external_id] = index
        accepted.append((index, clean, set(row)))
        if clean.flags:
            result.flagged.append(
                {"index": index, "external_id": clean.external_id, "flags": clean.flags}
            )
    if accepted:
        with transaction.atomic():
            _store(accepted)
    result.stored = len(accepted)
    return result


def _store(accepted: list[tuple[int, CleanRow, set[str]]]) -> None:
    previous = dict(
        Customer.objects.filter(
            external_id__in=[clean.external_id for _index, clean, _fields in accepted]
        )
        .exclude(quality_flags=[])
        .values_list("external_id", "quality_flags")
    )
    # Rows carrying the same fields are upserted together: a row only overwrites the fields
    # it carries (a partial sync never blanks the others).
    groups: dict[frozenset[str], list[Customer]] = defaultdict(list)
    tagged: list[tuple[Customer, list[str]]] = []
    for _index, clean, row_fields in accepted:
        customer = Customer(
            **clean.values,
            quality_flags=merged_flags(previous.get(clean.external_id), row_fields, clean.flags),
        )
        groups[frozenset(clean.values) - {"external_id"}].append(customer)
        if clean.tags is not None:
            tagged.append((customer, clean.tags))
    for fields, customers in groups.items():
        Customer.objects.bulk_create(
            customers,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[*sorted(fields), "quality_flags", "updated_at"],
        )
    if tagged:
        _replace_tags(tagged)


def _replace_tags(tagged: list[tuple[Customer, list[str]]]) -> None:
    """Each customer's tags become exactly the given codes (tags are created on first use)."""
    codes = sorted({code for _customer, customer_codes in tagged for code in customer_codes})
    Tag.objects.bulk_create([Tag(code=code) for code in codes], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(code__in=codes).values_list("code", "pk"))
    CustomerTag.objects.filter(
        customer_id__in=[customer.pk for customer, _codes in tagged]
    ).delete()
    CustomerTag.objects.bulk_create(
        [
            CustomerTag(customer_id=customer.pk, tag_id=tag_ids[code])
            for customer, customer_codes in tagged
            for code in customer_codes
        ],
        batch_size=5000,
        # Two syncs of the same customer at once may both insert a link; one is enough.
        ignore_conflicts=True,
    )


def upsert_customer(*, external_id: str, data: dict[str, Any]) -> tuple[Customer, bool]:
    """Create or update one customer through the cleansing path; returns (customer, created)."""
    if "external_id" in data and data["external_id"] != external_id:
        raise InvalidCustomer(
            "The body's external_id differs from the one in the URL.",
            details=[
                {
                    "path": "external_id",
                    "code": "mismatch",
                    "message": "Leave external_id out of the body or make it match the URL.",
                }
            ],
        )
    # Cleansing strips the id (as in a bulk sync); the row is found under the stripped id.
    stored_id = external_id.strip()
    existed = Customer.objects.filter(external_id=stored_id).exists()
    result = bulk_upsert_customers(rows=[{**data, "external_id": external_id}])
    if result.rejected:
        raise InvalidCustomer(
            "The customer record is not valid; nothing was stored.",
            details=[
                {"path": error["field"], "code": error["code"], "message": error["message"]}
                for error in result.rejected[0]["errors"]
            ],
        )
    return Customer.objects.get(external_id=stored_id), not existed


def set_customer_tags(*, customer: Customer, codes: Iterable[str]) -> None:
    with transaction.atomic():
        _replace_tags([(customer, sorted(set(codes)))])


# --- CSV ---------------------------------------------------------------------------------------


@dataclass
class CsvImportResult:
    received: int = 0
    stored: int = 0
    # [{"line", "external_id", "errors"}] - line numbers as a spreadsheet shows them.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    flagged: int = 0
    # [{"line", "external_id", "flags"}] - stored rows whose bad values were blanked.
    flagged_rows: list[dict[str, Any]] = field(default_factory=list)


def import_customers_csv(*, text: str) -> CsvImportResult:
    """Import a CSV (header row of CSV_COLUMNS names, any subset) in batches of
    MAX_BULK_ROWS, each through `bulk_upsert_customers`. An empty cell leaves the stored
    value as it is; `tags` is a comma-separated list, `attributes` a JSON object."""
    reader = csv.DictReader(io.StringIO(text))
    unknown = sorted(set(reader.fieldnames or []) - set(CSV_COLUMNS))
    if not reader.fieldnames or "external_id" not in reader.fieldnames or unknown:
        raise InvalidCustomer(
            _("The first row must name the columns, including external_id."),
            details=[
                {
                    "path": name,
                    "code": "unknown_field",
                    "message": _("Unknown column %(name)r.") % {"name": name},
                }
                for name in unknown
            ]
            or None,
        )
    result = CsvImportResult()
    for first_line, rows in _batches(reader):
        batch = bulk_upsert_customers(rows=rows)
        result.received += batch.received
        result.stored += batch.stored
        result.flagged += len(batch.flagged)
        result.flagged_rows.extend(
            {
                "line": first_line + item["index"],
                "external_id": item["external_id"],
                "flags": item["flags"],
            }
            for item in batch.flagged
        )
        result.rejected.extend(
            {
                "line": first_line + item["index"],
                "external_id": item["external_id"],
                "errors": item["errors"],
            }
            for item in batch.rejected
        )
    return result


def _batches(reader: csv.DictReader) -> Iterator[tuple[int, list[dict[str, str]]]]:
    batch: list[dict[str, str]] = []
    first_line = 2  # line 1 is the header
    for row in reader:
        batch.append(
            {
                key: unescape_formula(value)
                for key, value in row.items()
                if key and value not in ("", None)
            }
        )
        if len(batch) == MAX_BULK_ROWS:
            yield first_line, batch
            first_line += len(batch)
            batch = []
    if batch:
        yield first_line, batch


def export_customers_csv(*, customers: QuerySet[Customer]) -> Iterator[str]:
    """The customers as CSV lines in the import format, streamed in chunks. Cells a spreadsheet
    would run as formulas are escaped (`core.text.formula_safe`); the import undoes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(CSV_COLUMNS)
    yield flush()
    tag_codes = (
        CustomerTag.objects.filter(customer_id=OuterRef("pk"))
        .order_by()
        .values("customer_id")
        .annotate(codes=StringAgg("tag__code", ",", order_by="tag__code"))
        .values("codes")
    )
    rows = customers.order_by("pk").annotate(tag_codes=Subquery(tag_codes))
    for customer in rows.iterator(chunk_size=2000):
        writer.writerow(_csv_row(customer))
        yield flush()


def _csv_row(customer: Customer) -> list[Any]:
    values: dict[str, Any] = {
        name: getattr(customer, name) for name in CSV_COLUMNS if name not in ("tags",)
    }
    values["birthday"] = customer.birthday.isoformat() if customer.birthday else ""
    values["unsubscribed_at"] = (
        customer.unsubscribed_at.isoformat() if customer.unsubscribed_at else ""
    )
    values["attributes"] = (
        json.dumps(customer.attributes, ensure_ascii=False) if customer.attributes else ""
    )
    for name in ("email_consent", "sms_consent", "wechat_consent"):
        values[name] = "true" if values[name] else "false"
    # `tag_codes` is annotated by the export queryset (one aggregate, no query per row).
    values["tags"] = getattr(customer, "tag_codes", "") or ""
    return [formula_safe(str(values[name])) for name in CSV_COLUMNS]
