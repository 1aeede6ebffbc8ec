from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User

DEMO_ADMIN_EMAIL = "admin@campusiq.example"
DEMO_ADMIN_PASSWORD = "demo-admin-pass-2026"  # noqa: S105  (demo data, printed for the README)


class Command(BaseCommand):
    help = "Creates the demo accounts (idempotent). Demo data only: never run against production."

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=["small", "large"], default="small")
        parser.add_argument("--seed", type=int, default=2026)

    @transaction.atomic
    def handle(self, *args, **options):
        admin, created = User.objects.get_or_create(
            email=DEMO_ADMIN_EMAIL,
            defaults={"first_name": "Ada", "last_name": "Admin", "is_staff": True, "is_superuser": True},
        )
        if created:
            admin.set_password(DEMO_ADMIN_PASSWORD)
            admin.save(update_fields=["password"])
        self.stdout.write(f"Demo admin: {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}")
