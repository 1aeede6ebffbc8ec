import datetime

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.fields import Field

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import ApiToken, LinkedIdentity, SamlMetadata, User
from accounts.roles import Role, group_name
from accounts.services import user_role_grant, user_role_revoke, user_roles, user_session_register
from accounts.sso.config import sso_providers
from accounts.tokens import api_token_issue, api_token_lifetime_validate, api_token_revoke
from campusiq.core.admin import CampusExportActionMixin, ReadOnlyAdmin

# Autocomplete of these fields offers only the people who hold the role.
AUTOCOMPLETE_ROLES = {
    ("students", "student", "advisor"): Role.ADVISOR,
    ("students", "section", "lecturers"): Role.LECTURER,
}


def role_labels(user: User) -> str:
    held = user_roles(user)
    return ", ".join(role.label for role in Role if role in held)


class UserResource(resources.ModelResource):
    """Never the password hash."""

    roles = Field(column_name="roles")

    class Meta:
        model = User
        fields = (
            "email",
            "first_name",
            "last_name",
            "roles",
            "is_active",
            "is_staff",
            "is_superuser",
            "is_service_account",
            "date_joined",
            "last_login",
        )

    def filter_export(self, queryset, **kwargs):
        return queryset.prefetch_related("groups")

    def dehydrate_roles(self, user: User) -> str:
        held = user_roles(user)
        return " ".join(role.value for role in Role if role in held)


class UserRolesChangeForm(UserChangeForm):
    """The change form, with the user's roles in place of the raw groups. Each role granted or
    revoked goes through user_role_grant / user_role_revoke, which audit it and set the staff flags."""

    roles = forms.MultipleChoiceField(
        choices=Role.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Registrar and Admin work in this admin; Admin holds every permission. Changes are audited."),
    )
    editor: User | None = None  # the signed-in admin, set by UserAdmin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "roles" in self.fields and self.instance.pk:
            self.initial["roles"] = [role.value for role in Role if role in user_roles(self.instance)]

    def clean_roles(self) -> set[Role]:
        wanted = {Role(value) for value in self.cleaned_data["roles"]}
        if (
            self.editor is not None
            and self.instance.pk == self.editor.pk
            and Role.ADMIN in user_roles(self.instance)
            and Role.ADMIN not in wanted
        ):
            raise ValidationError(_("You cannot revoke your own Admin role; another admin can."))
        return wanted

    def clean_is_active(self) -> bool:
        active = self.cleaned_data["is_active"]
        if self.editor is not None and self.instance.pk == self.editor.pk and not active:
            # It would end this very session mid-request (accounts.signals); another admin can.
            raise ValidationError(_("You cannot deactivate your own account; another admin can."))
        return active


def _managed_roles(link: LinkedIdentity) -> str:
    provider = sso_providers().get(link.provider)
    if provider is None:
        return str(_("(provider not configured)"))
    return ", ".join(sorted(str(role.label) for role in provider.managed_roles)) or "—"


@admin.register(LinkedIdentity)
class LinkedIdentityAdmin(admin.ModelAdmin):
    """People's accounts at campus identity providers. Only superusers link or unlink: that is how a
    staff account is tied to the campus sign-on, never by the provider alone (docs/SSO.md). The roles
    a provider manages are shown, not edited: they follow the provider at every sign-in."""

    list_display = ["user", "provider", "subject", "managed_roles", "last_sign_in_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "subject"]
    list_filter = ["provider"]
    fields = ["user", "provider", "issuer", "subject", "managed_roles", "created_at", "last_sign_in_at"]
    readonly_fields = ["managed_roles", "created_at", "last_sign_in_at"]
    autocomplete_fields = ["user"]

    @admin.display(description=_("Roles it manages"))
    def managed_roles(self, link: LinkedIdentity) -> str:
        return _managed_roles(link)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser or super().has_view_permission(request, obj)


@admin.register(SamlMetadata)
class SamlMetadataAdmin(ReadOnlyAdmin):
    """The checked copy of each SAML provider's metadata read from a URL (accounts/sso/metadata.py): shown,
    never edited; the schedule or `manage.py sso_metadata_refresh` replaces it."""

    list_display = ["provider", "fetched_at", "valid_until", "sha256", "failed_at", "failure"]
    fields = ["provider", "source", "signing_cert_sha256", "sha256", "fetched_at", "valid_until", "failed_at",
              "failure", "xml"]  # fmt: skip
    readonly_fields = fields


@admin.register(User)
class UserAdmin(CampusExportActionMixin, DjangoUserAdmin):
    """Roles are granted here by admins (superusers) only. Registrars may add people and edit the
    accounts of people who are not staff; staff accounts, theirs included, they may only view."""

    form = UserRolesChangeForm
    add_form = UserCreationForm
    resource_classes = [UserResource]
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "roles", "is_active", "is_staff", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name"]}),
        (
            _("Roles and access"),
            {"fields": ["roles", "is_active", "is_staff", "is_superuser", "is_service_account", "user_permissions"]},
        ),
        (_("Campus sign-on"), {"fields": ["linked_identities"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("Linked identities"))
    def linked_identities(self, user: User) -> str:
        """Each provider account, and the roles that provider manages for the person (read-only)."""
        links = [f"{link.provider}: {link.subject} ({_managed_roles(link)})" for link in user.linked_identities.all()]
        return "; ".join(links) or "—"

    def get_readonly_fields(self, request, obj=None):
        # The flags follow the roles (accounts.services); raw groups and permissions would skip the audit.
        readonly = ["is_staff", "is_superuser", "user_permissions", "last_login", "date_joined", "linked_identities"]
        if not request.user.is_superuser:
            readonly += ["roles", "is_service_account"]
        return readonly

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.editor = request.user
        return form

    def has_change_permission(self, request, obj=None) -> bool:
        # Only admins change staff, lecturers or advisors: whoever can change an email or password can
        # take the account over. Registrars keep students' accounts (and people holding no role).
        if (
            obj is not None
            and not request.user.is_superuser
            and (obj.is_staff or obj.is_superuser or user_roles(obj) - {Role.STUDENT})
        ):
            return False
        return super().has_change_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if "roles" not in form.cleaned_data:
            return
        user = form.instance
        held, wanted = set(user_roles(user)), form.cleaned_data["roles"]
        for role in Role:
            if role in wanted and role not in held:
                user_role_grant(user=user, role=role, actor=request.user)
            elif role in held and role not in wanted:
                user_role_revoke(user=user, role=role, actor=request.user)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        # Changing one's own password here keeps this session (Django rotates its key): index it again.
        if request.method == "POST" and request.user.is_authenticated and str(request.user.pk) == unquote(id):
            user_session_register(user=request.user, session=request.session)
        return response

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        key = (request.GET.get("app_label"), request.GET.get("model_name"), request.GET.get("field_name"))
        if role := AUTOCOMPLETE_ROLES.get(key):
            queryset = queryset.filter(groups__name=group_name(role))
        return queryset, may_have_duplicates

    @admin.display(description=_("roles"))
    def roles(self, user: User) -> str:
        return role_labels(user)


class ApiTokenIssueForm(forms.ModelForm):
    lifetime_days = forms.IntegerField(
        min_value=1, max_value=365, initial=30, help_text=_("Personal tokens: at most 30 days; service accounts: 365.")
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scope"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("user") and cleaned.get("lifetime_days"):
            lifetime = datetime.timedelta(days=cleaned["lifetime_days"])
            try:
                api_token_lifetime_validate(user=cleaned["user"], lifetime=lifetime)
            except ValidationError as error:
                self.add_error("lifetime_days", error)
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Issue tokens (the key is shown once, on the page that follows) and revoke them. Never edited."""

    list_display = ["name", "user", "kind", "scope", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["kind", "scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__email"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = [
        "user",
        "name",
        "kind",
        "scope",
        "prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    exclude = ["key_hash"]
    actions = ["revoke_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenIssueForm
            kwargs["fields"] = ["user", "name", "scope", "lifetime_days"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_exclude(self, request, obj=None):
        return self.exclude if obj is not None else None

    def get_fields(self, request, obj=None):
        return ["user", "name", "scope", "lifetime_days"] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        token, key = api_token_issue(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            lifetime=datetime.timedelta(days=form.cleaned_data["lifetime_days"]),
            actor=request.user,
        )
        obj.__dict__.update(token.__dict__)
        request.campusiq_issued_key = key

    def response_add(self, request, obj, post_url_continue=None):
        # The key goes straight to this page: never into a message, a session or a log.
        context = {**self.admin_site.each_context(request), "token": obj, "key": request.campusiq_issued_key,
                   "opts": self.opts, "title": _("Token issued")}  # fmt: skip
        return TemplateResponse(request, "admin/accounts/apitoken/issued.html", context)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Revoke selected tokens"), permissions=["view"])
    def revoke_selected(self, request, queryset):
        if not request.user.is_superuser:
            self.message_user(request, _("Only admins revoke tokens here."), level="error")
            return
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            api_token_revoke(token=token, actor=request.user)
        self.message_user(request, _("%(count)d token(s) revoked.") % {"count": len(tokens)})


def admin_login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin's own sign-in page would skip the portal's: its throttling by known browser and the
    two-factor step. Everyone signs in through the portal's, then comes back."""
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("admin:index")
    if request.user.is_authenticated:
        if admin.site.has_permission(request):
            return redirect(next_url)
        raise PermissionDenied
    return redirect_to_login(next_url, reverse("login"))


admin.site.login = admin_login
