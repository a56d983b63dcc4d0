"""The API docs page works with no internet, under the same script policy as every page."""

import pytest
from django.contrib.auth.models import User

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_the_operations_offline_with_no_csp_violation(chromium, web_server):
    User.objects.create_user(username="scripter", password="pw-scripter")
    context = chromium.new_context()
    context.set_default_timeout(10000)
    outside_requests: list[str] = []

    def only_rapport(route):
        if route.request.url.startswith(web_server.base_url):
            route.continue_()
        else:
            outside_requests.append(route.request.url)
            route.abort()

    context.route("**/*", only_rapport)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(web_server.base_url + "/accounts/login/")
    page.fill("input[name=username]", "scripter")
    page.fill("input[name=password]", "pw-scripter")
    page.click("button[type=submit]")
    page.wait_for_url(web_server.base_url + "/")

    page.goto(web_server.base_url + "/api/docs/")
    page.wait_for_selector("text=/api/telephony/events/")

    assert outside_requests == []
    assert violations == []
    context.close()
