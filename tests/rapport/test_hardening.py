"""Hardening: production settings pass Django's deploy checks, logins are throttled, forms need
CSRF, pages forbid inline script, and a WebSocket from a foreign origin is refused."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from rapport.asgi import application

# Secure by default: nothing more is needed (test_production_settings.py has the rest).
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "rapport.example.com",
}
# The test run's own development mode must not leak into the production run.
DEVELOPMENT_ENV = ("RAPPORT_DEVELOPMENT", "INSECURE_HTTP")


def _check_deploy(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in PRODUCTION_ENV and key not in DEVELOPMENT_ENV
    }
    env.update(extra_env, DJANGO_SETTINGS_MODULE="rapport.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_about_plain_http_and_the_development_key():
    result = _check_deploy({"DEBUG": "0", "INSECURE_HTTP": "1"})
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "rapport.E002"):
        assert check in result.stderr


@pytest.mark.django_db
def test_the_sixth_bad_login_is_refused():
    User.objects.create_user("dana", password="right-password-1")
    client = Client()
    codes = [
        client.post("/accounts/login/", {"username": "dana", "password": "wrong"}).status_code
        for _ in range(5)
    ]
    # Four times the form again with its error; the fifth mistake locks the login.
    assert codes == [200, 200, 200, 200, 429]
    sixth = client.post("/accounts/login/", {"username": "dana", "password": "wrong"})
    assert sixth.status_code == 429
    # Locked out: even the right password waits for the cool-off.
    right = client.post("/accounts/login/", {"username": "dana", "password": "right-password-1"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_good_login_still_works_after_a_few_mistakes():
    User.objects.create_user("dana", password="right-password-1")
    client = Client()
    client.post("/accounts/login/", {"username": "dana", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "dana", "password": "right-password-1"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_forms_need_a_csrf_token():
    User.objects.create_user("dana", password="right-password-1")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "dana", "password": "right-password-1"})
    assert response.status_code == 403


# A <script> without src that the browser would run (json_script's application/json is data).
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>")


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: sources
        for name, *sources in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/health/"])
def test_every_response_forbids_inline_script(client, path):
    response = client.get(path)
    directives = _directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_logged_in_pages_carry_the_policy_and_no_inline_script(client, make_agent):
    dana = make_agent("dana")
    client.force_login(dana.user)
    response = client.get("/")
    assert response.status_code == 200
    assert "'unsafe-inline'" not in _directives(response)["script-src"]
    assert not INLINE_SCRIPT.search(response.content)


@pytest.mark.django_db
def test_the_api_docs_load_their_scripts_from_files_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert not INLINE_SCRIPT.search(response.content)
    assert "'unsafe-inline'" not in _directives(response)["script-src"]


def _connect(headers):
    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        first = await communicator.receive_json_from(timeout=5) if connected else None
        await communicator.disconnect()
        return connected, first

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_a_websocket_from_a_foreign_origin_is_refused(make_agent):
    dana = make_agent("dana")
    client = Client()
    client.force_login(dana.user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())

    connected, first = _connect([(b"origin", b"http://localhost"), (b"host", b"localhost"), cookie])
    assert connected
    assert first["type"] == "state"

    connected, _ = _connect([(b"origin", b"https://evil.example"), (b"host", b"localhost"), cookie])
    assert not connected
