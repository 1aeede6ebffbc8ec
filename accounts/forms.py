from django import forms
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.backends import REFUSAL_ATTRIBUTE, SSO_ONLY_ATTRIBUTE
from accounts.models import User
from accounts.signin import refusal_message


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
