"""The activity definition document: one YAML/JSON file per activity, with its template,
chains, steps and benefits, validated by a published JSON Schema (see DESIGN.md's appendix)."""

from .exporter import dump_definition, export_definition
from .importer import check_definition, import_definition
from .loading import parse_text
from .schema import document_schema, published_schema_text

__all__ = [
    "check_definition",
    "document_schema",
    "dump_definition",
    "export_definition",
    "import_definition",
    "parse_text",
    "published_schema_text",
]
