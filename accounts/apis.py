import datetime

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.backends import REFUSAL_ATTRIBUTE, SSO_ONLY_ATTRIBUTE
from accounts.models import ApiToken, User
from accounts.signin import (
    SignInThrottled,
    refusal_message,
    sign_in_code_begin,
    sign_in_code_failed,
    sign_in_code_passed,
)
from accounts.tokens import api_token_issue, api_token_revoke
from accounts.two_factor import code_normalise, two_factor_device, two_factor_verify, two_factor_wait_seconds
from campusiq.core.errors import ServiceError
from campusiq.core.ratelimit import RateLimit, client_network, rate_limits_enforce


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    name = serializers.CharField(max_length=100, required=False, default="personal token")
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, default=ApiToken.Scope.READ)
    lifetime_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    code = serializers.CharField(
        max_length=20,
        required=False,
        allow_blank=True,
        help_text="With two-factor sign-in on the account: the current code of its authenticator app.",
    )


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "kind", "scope", "prefix", "created_at", "expires_at", "last_used_at"]


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The key. Shown once: store it now.")

    class Meta(TokenSerializer.Meta):
        fields = ["token", *TokenSerializer.Meta.fields]


class TokenApi(APIView):
    """Personal API tokens: exchange email and password for a bearer token; revoke the one in use."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        auth=[],
        request=TokenRequestSerializer,
        responses={201: IssuedTokenSerializer},
        examples=[
            OpenApiExample(
                "Read-only token for a week",
                # Bandit B105: not a secret: a name, code or example.
                value={"email": "bi@campus.example", "password": "…", "scope": "read", "lifetime_days": 7},  # nosec B105
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        # Requests per client address, whatever their outcome (a flood guard). Failed passwords are
        # counted by the backend with the portal's, in one budget per account (accounts/signin.py):
        # not per account here, or anyone could keep a person from getting a token.
        rate_limits_enforce([RateLimit("api-token-ip", client_network(request), settings.API_TOKEN_RATE_PER_IP)])
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, username=data.validated_data["email"], password=data.validated_data["password"])
        if (refusal := getattr(request, REFUSAL_ATTRIBUTE, None)) is not None:
            raise Throttled(wait=refusal.retry_after, detail=refusal_message(refusal))
        if (provider := getattr(request, SSO_ONLY_ATTRIBUTE, None)) is not None:
            detail = f"This account signs in with {provider.name}, not a password; an administrator issues its tokens."
            raise ServiceError("password_sign_in_off", detail, status=403)
        if user is None:
            raise ServiceError("invalid_credentials", "Email or password is wrong.", status=401)
        _second_factor_check(request, user, data.validated_data.get("code", ""))
        lifetime_days = data.validated_data.get("lifetime_days")
        token, key = api_token_issue(
            user=user,
            name=data.validated_data["name"],
            scope=data.validated_data["scope"],
            lifetime=None if lifetime_days is None else datetime.timedelta(days=lifetime_days),
            actor=user,
        )
        body = IssuedTokenSerializer({**TokenSerializer(token).data, "token": key}).data
        return Response(body, status=status.HTTP_201_CREATED)


def _second_factor_check(request: Request, user: User, code: str) -> None:
    """A token carries its person's powers without a browser, so it is as hard to get as a session:
    with two-factor sign-in on, the password comes with a current code (single use, limited like the
    portal's code step); staff who must use two-factor (ADMIN_REQUIRE_TWO_FACTOR) and have not set it
    up get no token."""
    device = two_factor_device(user)
    if device is None:
        if settings.ADMIN_REQUIRE_TWO_FACTOR and (user.is_staff or user.is_superuser):
            raise ServiceError(
                "two_factor_setup_required",
                "Set up two-factor sign-in in the portal (Profile) before asking for a token.",
                status=403,
            )
        return
    if not code_normalise(code):
        raise ServiceError(
            "two_factor_required",
            "This account signs in with a code from its authenticator app: send it as `code`.",
            status=401,
            field="code",
        )
    if wait := two_factor_wait_seconds(device):
        raise Throttled(wait=wait, detail=f"Too many wrong codes. Wait {wait} seconds before the next.")
    try:
        reservation = sign_in_code_begin(request=request, user=user)
    except SignInThrottled as throttled:
        raise Throttled(wait=throttled.refusal.retry_after, detail=refusal_message(throttled.refusal)) from None
    if not two_factor_verify(device=device, code=code):
        sign_in_code_failed(request=request, user=user)
        raise ServiceError(
            "two_factor_code_invalid",
            "That code is not right. Codes change every 30 seconds; send the current one.",
            status=401,
            field="code",
        )
    sign_in_code_passed(reservation=reservation, user=user)


class CurrentTokenApi(APIView):
    """The token this request is authenticated with. Even a read-only token may revoke itself."""

    permission_classes = [IsAuthenticated]

    def _token(self, request: Request) -> ApiToken:
        if not isinstance(request.auth, ApiToken):
            raise ServiceError("not_token_authenticated", "This request is not authenticated with a token.")
        return request.auth

    @extend_schema(responses={200: TokenSerializer})
    def get(self, request: Request) -> Response:
        return Response(TokenSerializer(self._token(request)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        api_token_revoke(token=self._token(request), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
