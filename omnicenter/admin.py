from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from omnicenter.errors import DomainError
from omnicenter.models import ApiToken, User
from omnicenter.services import api_token_revoke, api_token_update, check_token_scopes


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, (_("Preferences"), {"fields": ("language",)}))
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff")


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple,
        help_text=_("The parts of the API this token may use; any other answers 403."),
    )

    class Meta:
        model = ApiToken
        fields = ("name", "read_only", "scopes")

    def clean_scopes(self) -> list[str]:
        try:
            return check_token_scopes(self.cleaned_data["scopes"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "prefix", "user", "read_only", "scope_list", "created_at", "last_used_at", "revoked_at")
    list_filter = ("read_only",)
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "read_only", "scopes", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # created with `manage.py create_api_token`, which shows the key once

    @admin.display(description=_("scopes"))
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        api_token_update(token=obj, name=data["name"], scopes=data["scopes"], read_only=data["read_only"])

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
