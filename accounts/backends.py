from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts.signin import SignInThrottled, sign_in_attempt_begin, sign_in_attempt_failed, sign_in_attempt_passed
from accounts.sso.services import sso_password_provider

# The request attribute a throttled attempt leaves for the view (portal page or API) to answer 429 with.
REFUSAL_ATTRIBUTE = "campusiq_sign_in_refusal"
# The one a right password of an account that signs in through its campus provider leaves (the
# provider), for the view to say so.
SSO_ONLY_ATTRIBUTE = "campusiq_sign_in_sso_only"


class EmailBackend(ModelBackend):
    """Sign-in by email and password. Service accounts never sign in: they only hold API tokens.

    Every password check of the site comes through here (the portal's sign-in, the API's token
    endpoint; the admin's sign-in page sends people to the portal's), so this is where failed
    attempts are counted and spent budgets refuse (accounts/signin.py)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        if request is None:  # a shell or a management command: nobody to throttle
            return super().authenticate(request, username=username, password=password, **kwargs)
        try:
            attempt = sign_in_attempt_begin(request=request, email=str(username))
        except SignInThrottled as throttled:
            setattr(request, REFUSAL_ATTRIBUTE, throttled.refusal)
            # Stops authenticate() before any password is checked: no answer to learn from.
            raise PermissionDenied from throttled
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            sign_in_attempt_failed(attempt)
            return None
        sign_in_attempt_passed(attempt)
        if (provider := sso_password_provider(user)) is not None:
            setattr(request, SSO_ONLY_ATTRIBUTE, provider)
            return None  # the campus sign-on replaces the password (docs/SSO.md)
        return user

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and not getattr(user, "is_service_account", False)
