"""From a gameplay and its parameters to an activity: check, build the document, import it.

Parameter errors carry the parameter's path (`milestones[1].day`) and a message in the
operator's language; everything else is the definition importer's, with its document paths
(`code`, `starts_at`, `benefits[0].code`), so the admin form can show each on its field.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

from activities.definitions.importer import import_definition
from activities.definitions.loading import format_path, plain_tree, refuse
from activities.engine.errors import ConfigError
from activities.models import Activity

from .base import BENEFIT, Gameplay, Parameters, get

PARAMETERS = "parameters"


def _message(error: Any) -> str:
    limit = error.validator_value
    if error.validator == "required":
        return _("This field is required.")
    if error.validator == "minimum":
        return _("Use %(limit)s or more.") % {"limit": limit}
    if error.validator == "maximum":
        return _("Use %(limit)s or less.") % {"limit": limit}
    if error.validator == "minItems":
        return _("Add at least %(count)d.") % {"count": limit}
    if error.validator == "maxItems":
        return _("Add at most %(count)d.") % {"count": limit}
    if error.validator == "enum":
        return _("Pick one of the choices.")
    if error.validator == "type" and limit == "integer":
        return _("Enter a whole number.")
    return _("Enter a valid value.")


def _schema_errors(gameplay: Gameplay, parameters: Parameters) -> list[ConfigError]:
    errors = []
    for error in Draft202012Validator(gameplay.parameters).iter_errors(parameters):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = [name for name in error.validator_value if name not in error.instance]
            path.extend(missing[:1])
        errors.append(ConfigError(format_path(path), _message(error), f"invalid_{error.validator}"))
    return sorted(errors, key=lambda e: e.path)


def _benefit_errors(
    gameplay: Gameplay, parameters: Parameters, benefit_codes: set[str]
) -> list[ConfigError]:
    """Every benefit a parameter names must be one of the activity's own."""
    errors = []

    def check(spec: dict[str, Any], value: Any, path: list[Any]) -> None:
        if spec.get("x-kind") != BENEFIT or (not value and spec["type"] != "string"):
            return
        if value not in benefit_codes:
            errors.append(
                ConfigError(
                    format_path(path),
                    _("Pick one of this activity's benefits."),
                    "unknown_benefit",
                )
            )

    for name, spec in gameplay.parameters["properties"].items():
        value = parameters.get(name)
        check(spec, value, [name])
        items = spec.get("items", {}).get("properties")
        if spec.get("type") == "array" and items and isinstance(value, list):
            for index, row in enumerate(value):
                for item_name, item_spec in items.items():
                    check(item_spec, row.get(item_name), [name, index, item_name])
    return errors


def parameter_errors(
    *, gameplay: Gameplay, parameters: Parameters, benefit_codes: set[str]
) -> list[ConfigError]:
    """Problems with the parameters, by parameter path; [] when the gameplay can work."""
    errors = _schema_errors(gameplay, parameters)
    if errors:
        return errors
    return _benefit_errors(gameplay, parameters, benefit_codes) + gameplay.validate(parameters)


def build_document(
    *, gameplay: Gameplay, parameters: Parameters, activity: dict[str, Any]
) -> dict[str, Any]:
    """The definition document: the activity's fields (code, name, timezone, starts_at,
    ends_at, segment, benefits, optional budget) plus the gameplay's chains. The template is
    the activity's own, named after it."""
    return {
        **activity,
        "template": activity["code"],
        "template_name": str(gameplay.name),
        "gameplay": {"code": gameplay.code, PARAMETERS: parameters},
        "chains": gameplay.build(parameters),
    }


def create_from_gameplay(
    *,
    gameplay_code: str,
    parameters: Parameters,
    activity: dict[str, Any],
    launch_bypassing_review_by: str = "",
) -> Activity:
    """Create a draft activity (template, chains, steps, benefits) from a gameplay.

    Raises InvalidConfiguration listing every problem: parameter problems under
    `parameters.<path>`, the rest with the definition document's paths.
    """
    gameplay = get(gameplay_code)
    if gameplay is None:
        raise refuse(
            _("The activity definition is not valid."),
            [ConfigError("gameplay", _("There is no such gameplay."), "unknown_gameplay")],
        )
    parameters = plain_tree(parameters)
    benefit_codes = {benefit["code"] for benefit in activity.get("benefits", [])}
    errors = parameter_errors(gameplay=gameplay, parameters=parameters, benefit_codes=benefit_codes)
    if errors:
        raise refuse(
            _("The gameplay's settings are not valid."),
            [
                ConfigError(f"{PARAMETERS}.{e.path}" if e.path else PARAMETERS, e.message, e.code)
                for e in errors
            ],
        )
    return import_definition(
        document=build_document(gameplay=gameplay, parameters=parameters, activity=activity),
        launch_bypassing_review_by=launch_bypassing_review_by,
    )
