import pytest

from accounts.roles import Role
from tests.factories import UserFactory


@pytest.fixture
def registrar():
    return UserFactory(roles=[Role.REGISTRAR])


@pytest.fixture
def registrar_client(client, registrar):
    client.force_login(registrar)
    return client
