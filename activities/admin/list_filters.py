"""The activity list hides archived activities unless asked: an archived activity is finished
business, and the default list is the operator's working set."""

from __future__ import annotations

from typing import Any

from django import http
from django.contrib import admin
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from activities.models import ActivityState


class ArchivedFilter(admin.SimpleListFilter):
    title = _("archived")
    parameter_name = "archived"

    def lookups(self, request: http.HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("include", _("shown too")), ("only", _("only archived"))]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == _("All"):
                choice["display"] = _("hidden")
            yield choice

    def queryset(self, request: http.HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "only":
            return queryset.filter(state=ActivityState.ARCHIVED)
        if self.value() == "include" or request.GET.get("state__exact"):
            return queryset
        return queryset.exclude(state=ActivityState.ARCHIVED)
