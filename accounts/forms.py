from django import forms
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.backends import REFUSAL_ATTRIBUTE, SSO_ONLY_ATTRIBUTE
from accounts.models import ApiToken, User
from accounts.signin import refusal_message
from accounts.tokens import api_token_max_days


class UserCreationForm(auth_forms.UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class SignInForm(auth_forms.AuthenticationForm):
    """Django's sign-in form; a throttled attempt says why and for how long instead of "wrong password"."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            refusal = getattr(self.request, REFUSAL_ATTRIBUTE, None)
            if refusal is not None:
                raise ValidationError(refusal_message(refusal), code="throttled") from None
            if (provider := getattr(self.request, SSO_ONLY_ATTRIBUTE, None)) is not None:
                message = _("Your account signs in with %(provider)s: use its button above.")
                raise ValidationError(message % {"provider": provider.name}, code="sso_only") from None
            raise


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=16,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


# Lifetimes offered on the "API tokens" page, cut to what the person's tokens may live (api_token_max_days).
TOKEN_LIFETIME_DAYS = (1, 7, 30, 90, 365)
TOKEN_LIFETIME_DEFAULT_DAYS = 7


class ApiTokenForm(forms.Form):
    """A personal token from the portal: shapes only; api_token_issue holds the rules (and says no)."""

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What it is for, so you know it again later: “laptop”, “timetable sync”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        label=_("What it may do"),
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text=_("Read only: it can look, not change anything. Read and write: everything you may do yourself."),
    )
    lifetime_days = forms.TypedChoiceField(label=_("Expires after"), coerce=int)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        longest = api_token_max_days(user=user)
        days = sorted({d for d in TOKEN_LIFETIME_DAYS if d <= longest} | {longest})
        field = self.fields["lifetime_days"]
        field.choices = [(d, ngettext("%(n)d day", "%(n)d days", d) % {"n": d}) for d in days]
        field.initial = min(TOKEN_LIFETIME_DEFAULT_DAYS, longest)
