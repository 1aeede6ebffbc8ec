from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str):
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person or service account. People sign in with their email address."""

    username = None
    email = models.EmailField("email address", unique=True)
    is_service_account = models.BooleanField(
        default=False, help_text="An integration (card reader, registrar system): API tokens only, never a login."
    )

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class ApiToken(models.Model):
    """A bearer token for the API. Only a SHA-256 of the key is stored; the key is shown once."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"

    class Kind(models.TextChoices):
        PERSONAL = "personal", "Personal"
        SERVICE = "service", "Service account"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSONAL)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, to find it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["read", "read_write"]), name="api_token_scope_valid"),
            models.CheckConstraint(condition=models.Q(kind__in=["personal", "service"]), name="api_token_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="api_token_expires_after_creation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and self.expires_at > timezone.now()


class SignedInSession(models.Model):
    """Which server-side sessions are whose, so a password change or a deactivation can end them
    all at once (Django would only refuse them on their next request). Written at sign-in; goes
    with its session (sign-out, expiry, clearsessions) through the cascade."""

    session = models.OneToOneField(
        "sessions.Session", on_delete=models.CASCADE, primary_key=True, related_name="signed_in_as"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="signed_in_sessions")
    signed_in_at = models.DateTimeField(auto_now_add=True)
    # A sign-in through a campus provider: its slug, its name for the person (OIDC sub, SAML NameID) and
    # its session (OIDC sid, SAML SessionIndex), so a logout the provider starts can end this session.
    provider = models.CharField(max_length=40, blank=True, default="")
    provider_subject = models.CharField(max_length=500, blank=True, default="")
    provider_session = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-signed_in_at"]
        indexes = [
            models.Index(
                fields=["provider", "provider_subject"],
                name="signed_in_session_provider",
                condition=~models.Q(provider=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} since {self.signed_in_at:%Y-%m-%d %H:%M}"


class LinkedIdentity(models.Model):
    """A person's account at a campus identity provider, by the provider's stable identifier for them
    (OIDC: issuer and subject; SAML: issuer and persistent NameID, subject-id or eduPersonPrincipalName).
    Who signs in through SSO is found here, never by name."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="linked_identities")
    provider = models.CharField(max_length=40, help_text="The provider's slug in SSO_CONFIG_FILE.")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="linked_identity_unique_subject"),
            models.CheckConstraint(
                condition=~models.Q(issuer="") & ~models.Q(subject=""), name="linked_identity_issuer_subject_set"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.subject}"


class SamlMetadata(models.Model):
    """The last good copy of a SAML provider's metadata read from a URL: fetched, its signature checked
    against the provider's idp_metadata_cert, its validUntil and IdP entity checked
    (accounts/sso/metadata.py). Sign-ins read it; a failed refresh keeps it and says why here."""

    provider = models.CharField(max_length=40, unique=True, help_text="The provider's slug in SSO_CONFIG_FILE.")
    source = models.URLField(max_length=500, help_text="The URL it was fetched from.")
    signing_cert_sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the certificate its signature was checked against."
    )
    xml = models.TextField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the document as fetched.")
    fetched_at = models.DateTimeField(help_text="When this copy was last fetched and checked.")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="The document's validUntil, if it has one.")
    failed_at = models.DateTimeField(null=True, blank=True, help_text="The last refresh that failed since then.")
    failure = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        verbose_name = "SAML metadata"
        verbose_name_plural = "SAML metadata"
        ordering = ["provider"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(xml="") & ~models.Q(sha256=""), name="saml_metadata_xml_set"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} ({self.fetched_at:%Y-%m-%d %H:%M})"
