"""What every Gambit admin shares: state-machine buttons routed through services, read-only
admins for runtime rows, and the confirmation page destructive transitions go through.

Transition buttons come from django-fsm-2's `FSMAdminMixin` (the available transitions for this
user: source state, conditions and permission all checked by django-fsm). The mixin would call
the model's transition method itself; here every button calls a service instead, so the admin
stays thin and side effects (beat rows, cache invalidation, messages) happen in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from django_fsm.admin import FSMAdminMixin

from core.errors import GambitError, InvalidConfiguration


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        help_text=_("Kept in the transition history."),
    )


class EmptyForm(forms.Form):
    pass


@dataclass(frozen=True)
class TransitionButton:
    """One admin button: `run(obj, user, data)` calls the service that performs it."""

    run: Callable[[Any, Any, dict[str, Any]], Any]
    label: str | Promise
    # A message formatted with {obj}, or a function of the refreshed row giving the message.
    done: str | Promise | Callable[[Any], str]
    help_text: str | Promise = ""
    # Destructive transitions (end, archive, revoke) go through a confirmation page first.
    destructive: bool = False
    form: type[forms.Form] = EmptyForm
    # Asks on its own page first, showing `TransitionAdminMixin.confirmation_details` (what
    # the action will do, e.g. a broadcast's audience size and who will be skipped).
    confirm: bool = False


class TransitionAdminMixin(FSMAdminMixin):
    """State-machine buttons as a separate form on the change page and as list actions."""

    change_form_template = "admin/gambit/change_form.html"
    fsm_fields = ["state"]
    transition_buttons: dict[str, TransitionButton] = {}
    fsm_transition_not_allowed_msg = _("This action is not allowed for this record now.")

    # --- which buttons ----------------------------------------------------------------------

    @staticmethod
    def get_fsm_block_label(fsm_field_name: str) -> str:
        return str(_("Actions"))

    def is_fsm_transition_visible(self, transition: Any) -> bool:
        return transition.name in self.transition_buttons

    def get_fsm_label(self, transition: Any) -> str:
        return str(self.transition_buttons[transition.name].label)

    def get_help_text(self, transition: Any) -> str | None:
        return str(self.transition_buttons[transition.name].help_text) or None

    def transition_refusal(self, request: http.HttpRequest, obj: Any, name: str) -> str | None:
        """A reason beyond django-fsm's rules to refuse this transition (four eyes, ...)."""
        return None

    def extra_buttons(self, request: http.HttpRequest, obj: Any) -> list[dict[str, Any]]:
        """Buttons beside the transitions: {name, label, url, link (GET) or a POST}."""
        return []

    def _fsm_available(self, request: http.HttpRequest, obj: Any) -> list[str]:
        return [
            transition.name
            for transition in obj.get_available_user_state_transitions(user=request.user)
            if transition.name in self.transition_buttons
        ]

    def refusal(self, request: http.HttpRequest, obj: Any, name: str) -> str | None:
        """Why this user may not perform `name` on `obj` now, or None when they may."""
        if name not in self._fsm_available(request, obj):
            return str(self.fsm_transition_not_allowed_msg)
        return self.transition_refusal(request, obj, name)

    def allowed_transitions(self, request: http.HttpRequest, obj: Any) -> list[str]:
        return [
            name
            for name in self._fsm_available(request, obj)
            if self.transition_refusal(request, obj, name) is None
        ]

    def change_view(
        self,
        request: http.HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> http.HttpResponse:
        context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            context["gambit_transitions"] = [
                {
                    "name": name,
                    "label": self.transition_buttons[name].label,
                    "help_text": self.transition_buttons[name].help_text,
                    "destructive": self.transition_buttons[name].destructive,
                    "needs_form": self.transition_buttons[name].form is not EmptyForm
                    or self.transition_buttons[name].confirm,
                    "url": self.transition_url(obj, name),
                }
                for name in self.allowed_transitions(request, obj)
            ]
            context["gambit_buttons"] = self.extra_buttons(request, obj)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def confirmation_details(self, request: http.HttpRequest, obj: Any, name: str) -> str:
        """HTML the confirmation page shows before a transition runs (none by default)."""
        return ""

    def transition_url(self, obj: Any, name: str) -> str:
        meta = self.model._meta
        return reverse(
            f"admin:{meta.app_label}_{meta.model_name}_transition",
            kwargs={"object_id": obj.pk, "transition_name": name},
        )

    # --- applying one ------------------------------------------------------------------------

    def apply_transition(
        self, request: http.HttpRequest, obj: Any, name: str, data: dict[str, Any]
    ) -> bool:
        """Check, then call the service; report the outcome as an admin message."""
        refusal = self.refusal(request, obj, name)
        if refusal:
            self.message_user(request, refusal, level=messages.ERROR)
            return False
        button = self.transition_buttons[name]
        try:
            button.run(obj, request.user, data)
        except GambitError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return False
        except PermissionDenied:
            self.message_user(request, self.fsm_transition_not_allowed_msg, level=messages.ERROR)
            return False
        except (TransitionNotAllowed, ConcurrentTransition):
            self.message_user(request, self.fsm_transition_not_allowed_msg, level=messages.ERROR)
            return False
        if callable(button.done):
            # Said of the row as the service left it (scheduling may start an activity).
            obj.refresh_from_db()
            done = button.done(obj)
        else:
            done = str(button.done).format(obj=obj)
        self.message_user(request, done, level=messages.SUCCESS)
        return True

    def fsm_transition_view(
        self, request: http.HttpRequest, object_id: str, transition_name: str, **kwargs: Any
    ) -> http.HttpResponse:
        """GET: the confirmation page. POST: perform the transition through its service."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise http.Http404
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        meta = self.model._meta
        change_url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        button = self.transition_buttons.get(transition_name)
        refusal = self.refusal(request, obj, transition_name) if button else None
        if button is None or refusal:
            self.message_user(
                request, refusal or str(self.fsm_transition_not_allowed_msg), level=messages.ERROR
            )
            return redirect(change_url)
        form = button.form(request.POST if request.method == "POST" else None)
        confirmed = request.POST.get("confirmed") == "yes"
        if request.method == "POST" and form.is_valid() and confirmed:
            self.apply_transition(request, obj, transition_name, form.cleaned_data)
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": meta,
            "original": obj,
            "title": button.label,
            "button": button,
            "transition_form": form,
            "change_url": change_url,
            "details": self.confirmation_details(request, obj, transition_name),
        }
        return TemplateResponse(request, "admin/gambit/transition_confirm.html", context)

    # --- the same transitions as list actions ----------------------------------------------

    def get_actions(self, request: http.HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        for name, button in self.transition_buttons.items():
            if button.destructive or button.form is not EmptyForm or button.confirm:
                continue  # confirmation and reasons need the per-record page
            permission = _transition_permission(self.model, name)
            if permission and not request.user.has_perm(permission):
                continue
            action = self._bulk_action(name)
            actions[f"transition_{name}"] = (action, f"transition_{name}", action.short_description)
        return actions

    def _bulk_action(self, name: str) -> Callable[..., None]:
        def action(modeladmin: Any, request: http.HttpRequest, queryset: Any) -> None:
            done = 0
            for obj in queryset:
                if name in self.allowed_transitions(request, obj):
                    done += bool(self.apply_transition(request, obj, name, {}))
            if not done:
                self.message_user(
                    request, _("None of the selected records allows this."), messages.WARNING
                )

        action.short_description = self.transition_buttons[name].label  # type: ignore[attr-defined]
        return action


def _transition_permission(model: type, name: str) -> str | None:
    method = getattr(model, name, None)
    meta = getattr(method, "_django_fsm", None)
    if meta is None:
        return None
    transitions = meta.transitions
    transition = next(iter(transitions.values() if isinstance(transitions, dict) else transitions))
    return transition.permission if isinstance(transition.permission, str) else None


class ServiceErrorsMixin:
    """A service may refuse a save the form could not foresee (a template frozen meanwhile, a
    benefit still granted): the whole save rolls back and the operator sees why."""

    def changeform_view(
        self,
        request: http.HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> http.HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        except InvalidConfiguration as error:
            problems = [
                f"{detail['path']}: {detail['message']}"
                if detail.get("path")
                else detail["message"]
                for detail in (error.details or [])
            ]
            self.message_user(  # type: ignore[attr-defined]
                request, " ".join([error.message, *problems]), level=messages.ERROR
            )
            return redirect(request.get_full_path())


def record_saved(formset: Any, saved: list[tuple[Any, Any]], deleted: list[Any]) -> None:
    """What `formset.save()` would have recorded, for the admin's change message, when the
    forms were saved through services instead. `saved` is [(form, object)]."""
    formset.new_objects = [obj for form, obj in saved if not form.initial]
    formset.changed_objects = [(obj, form.changed_data) for form, obj in saved if form.initial]
    formset.deleted_objects = deleted


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runtime rows written by the engine: operators look, nobody edits by hand."""

    def has_add_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return False
