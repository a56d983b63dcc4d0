"""What the supervisor tests share: a supervisor, and an API client signed in as them."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient


@pytest.fixture
def supervisor(db) -> User:
    user = User.objects.create_user(username="morgan", password="pw-morgan")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


@pytest.fixture
def as_supervisor(supervisor) -> APIClient:
    client = APIClient()
    client.force_authenticate(supervisor)
    return client
