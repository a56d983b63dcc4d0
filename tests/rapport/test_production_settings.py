"""Production is secure by default: with DEBUG off, a real SECRET_KEY and ALLOWED_HOSTS and
nothing else, Django's deploy checks are clean (Secure cookies, HTTPS redirect, HSTS); the
development key is refused; plain HTTP is an explicit opt-out (INSECURE_HTTP=1). A developer's
machine (`make run`, the tests: RAPPORT_DEVELOPMENT=1) keeps plain HTTP and the development key."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from tests.support.servers import free_port, stop_up, wait_for_console

# Whatever this test run's own environment says about these, each test starts from nothing.
SECURITY_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "RAPPORT_DEVELOPMENT",
    "INSECURE_HTTP",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "NUM_PROXIES",
)
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "rapport.example.com",
}


def _environment(env: dict[str, str]) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if key not in SECURITY_VARIABLES}
    return {**base, "DJANGO_SETTINGS_MODULE": "rapport.settings", **env}


def _run(arguments: list[str], env: dict[str, str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=settings.BASE_DIR,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=120,
        **options,
    )


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


PRINT_TRANSPORT = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "session_secure": s.SESSION_COOKIE_SECURE, "csrf_secure": s.CSRF_COOKIE_SECURE,
    "redirect": s.SECURE_SSL_REDIRECT, "hsts": s.SECURE_HSTS_SECONDS,
    "proxy_header": s.SECURE_PROXY_SSL_HEADER,
}))
"""


def _transport(env: dict[str, str]) -> dict:
    result = _run(["-c", PRINT_TRANSPORT], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_only_debug_off_a_secret_key_and_allowed_hosts():
    result = _check_deploy(PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_to_secure_cookies_https_and_hsts():
    assert _transport(PRODUCTION) == {
        "session_secure": True,
        "csrf_secure": True,
        "redirect": True,
        "hsts": 31536000,
        "proxy_header": None,
    }


def test_behind_a_proxy_the_forwarded_protocol_says_whether_it_was_https():
    transport = _transport({**PRODUCTION, "NUM_PROXIES": "1"})

    assert transport["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.parametrize(
    "secret_key", [None, "django-insecure-dev-only-set-SECRET_KEY-in-production"]
)
def test_the_development_key_is_refused_with_debug_off(secret_key):
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}
    if secret_key:
        env["SECRET_KEY"] = secret_key

    checked = _check_deploy(env)
    served = _run(["-c", "import rapport.asgi"], env)

    assert checked.returncode != 0
    assert "SECRET_KEY" in checked.stderr and "rapport.E002" in checked.stderr
    assert served.returncode != 0
    assert "SECRET_KEY" in served.stderr


def test_development_commands_still_run_where_the_key_is_unset():
    """makemigrations, check and the like are not serving: only `check --deploy` and the
    server refuse the development key."""
    assert _run(["manage.py", "check"], {}).returncode == 0
    assert _run(["manage.py", "makemigrations", "--check", "--dry-run"], {}).returncode == 0


def test_plain_http_is_an_explicit_opt_out_that_check_deploy_still_reports():
    env = {**PRODUCTION, "INSECURE_HTTP": "1"}

    assert _transport(env) == {
        "session_secure": False,
        "csrf_secure": False,
        "redirect": False,
        "hsts": 0,
        "proxy_header": None,
    }
    reported = _check_deploy(env).stderr
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in reported


def test_a_developers_machine_serves_plain_http_with_the_development_key():
    env = {"RAPPORT_DEVELOPMENT": "1"}

    assert _transport(env)["redirect"] is False
    assert _run(["manage.py", "check"], env).returncode == 0


@pytest.mark.slow
def test_make_run_serves_plain_http_without_any_setting(tmp_path):
    env = _environment({"RAPPORT_DATA_DIR": str(tmp_path)})
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), "--workers", "1", "--no-demo"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_console(process, port, timeout=180)
    finally:
        stop_up(process)
