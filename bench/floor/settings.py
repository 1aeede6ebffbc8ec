"""The production settings, with the floor check-in's URLconf in front of the product's."""

from campusiq.settings.prod import *  # noqa: F403

ROOT_URLCONF = "floor.urls"
