"""Behind the reverse proxies in front (settings.NUM_PROXIES), the login lockout counts the
client's own address (infrastructure.client_address): an attacker cannot lock Dana out of hers,
and without a proxy a forged `X-Forwarded-For` counts for nothing."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def behind_one_proxy(settings):
    settings.NUM_PROXIES = 1


def _login(address: str, password: str, *, via: str | None = None):
    extra = {"REMOTE_ADDR": via or address}
    if via:
        extra["HTTP_X_FORWARDED_FOR"] = address
    return Client().post("/accounts/login/", {"username": "dana", "password": password}, **extra)


def test_behind_a_proxy_an_attacker_cannot_lock_dana_out_of_her_own_address(behind_one_proxy):
    User.objects.create_user("dana", password="right-password-1")
    attacker = [_login("203.0.113.66", "wrong", via="10.0.0.1").status_code for _ in range(6)]

    dana = _login("198.51.100.5", "right-password-1", via="10.0.0.1")

    assert attacker[-1] == 429
    assert dana.status_code == 302


def test_behind_a_proxy_dana_locks_only_herself_out():
    User.objects.create_user("dana", password="right-password-1")
    for _ in range(5):
        _login("198.51.100.5", "wrong")

    assert _login("198.51.100.5", "right-password-1").status_code == 429
    assert _login("198.51.100.6", "right-password-1").status_code == 302


def test_without_a_proxy_a_forged_forwarded_for_cannot_lock_dana_out():
    User.objects.create_user("dana", password="right-password-1")
    for _ in range(6):
        _login("198.51.100.5", "wrong", via="203.0.113.66")

    assert _login("198.51.100.5", "right-password-1").status_code == 302
