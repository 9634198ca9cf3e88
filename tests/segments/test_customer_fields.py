"""The customer's field lists all come from one declaration in `segments.models`."""

from segments.admin import CustomerForm
from segments.management.commands.generate_customers import CUSTOMER_COLUMNS
from segments.models import PROFILE_FIELDS, SYNCED_FIELDS, Customer
from segments.rule_fields import CUSTOMER_FIELDS
from segments.services.cleansing import FIELDS as CLEANSED_FIELDS
from segments.services.customers import CSV_COLUMNS

# Customer columns that are not part of the synced profile, each for a reason.
NOT_PROFILE = {
    "id": "the database's key",
    "attributes": "free attributes, synced beside the profile",
    "quality_flags": "written by cleansing, never synced",
    "created_at": "set by the database",
    "updated_at": "set by the database",
}


def test_every_customer_column_is_profile_or_declared_otherwise():
    columns = {field.name for field in Customer._meta.concrete_fields}
    assert columns == set(PROFILE_FIELDS) | set(NOT_PROFILE)


def test_field_lists_derive_from_the_declaration():
    assert (*PROFILE_FIELDS, "attributes", "tags") == SYNCED_FIELDS
    assert list(SYNCED_FIELDS) == CSV_COLUMNS
    assert frozenset(SYNCED_FIELDS) == CLEANSED_FIELDS
    assert CustomerForm._meta.fields == [*PROFILE_FIELDS, "attributes", "tag_set"]
    assert {*PROFILE_FIELDS, "created_at", "tags"} == CUSTOMER_FIELDS
    assert [
        *PROFILE_FIELDS,
        "attributes",
        "quality_flags",
        "created_at",
        "updated_at",
    ] == CUSTOMER_COLUMNS
