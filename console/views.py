from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse

from console.labels import (
    CALL_STATE_LABELS,
    HANDOFF_OUTCOME_LABELS,
    OFFER_OUTCOME_LABELS,
    OFFER_REASON_LABELS,
)
from infrastructure.content_security_policy import HEADER, build_policy
from routing import roles, selectors, wrap_up
from routing.states import not_ready_choices, status_label, status_labels
from telephony.sip.credentials import softphone_configured


@login_required
def console(request: HttpRequest) -> HttpResponse:
    agent = selectors.agent_for_user(request.user)
    is_supervisor = roles.is_supervisor(request.user)
    if agent is None and is_supervisor:
        # "/" is where every login lands; a supervisor's work is the dashboard.
        return redirect("supervisor")
    context: dict = {"agent": agent, "is_supervisor": is_supervisor}
    if agent is not None:
        context["not_ready_reasons"] = not_ready_choices()
        context["agent_status_label"] = status_label(agent.status, agent.not_ready_reason)
        # Read by console/static/console/state.js: the page carries no inline script (CSP).
        context["console_config"] = {
            "agent": {
                "id": agent.id,
                "display_name": agent.display_name,
                "status": agent.status,
                "not_ready_reason": agent.not_ready_reason,
                "status_label": context["agent_status_label"],
            },
            "socket_path": "/ws/agent/",
            "csrf_token": get_token(request),
            "customers_url": "/api/customers/",
            "calls_url": "/api/calls/",
            # The softphone's credentials (softphone.js), only where a PBX is configured for it.
            "softphone_url": reverse("softphone") if softphone_configured() else None,
            # By queue id: the codes the wrap-up panel offers, and whether Ready needs one.
            "wrap_up_codes": wrap_up.codes_by_queue(),
            "labels": {
                "statuses": status_labels(),
                "call_states": CALL_STATE_LABELS,
                "offer_reasons": OFFER_REASON_LABELS,
                "offer_outcomes": OFFER_OUTCOME_LABELS,
                "handoff_outcomes": HANDOFF_OUTCOME_LABELS,
            },
        }
    response = render(request, "console/console.html", context)
    if agent is not None and softphone_configured():
        allow_softphone_socket(response)
    return response


def allow_softphone_socket(response: HttpResponse) -> None:
    """The softphone (console/static/console/softphone.js) registers over a WebSocket to the PBX,
    which may be another origin than the page's (another port on loopback): the page's policy
    lets the page connect there, and nowhere else new."""
    url = urlsplit(settings.SOFTPHONE_WEBSOCKET_URL)
    if not url.scheme or not url.netloc:
        return
    policy = dict(settings.CONTENT_SECURITY_POLICY)
    policy["connect-src"] = [*policy.get("connect-src", []), f"{url.scheme}://{url.netloc}"]
    response[HEADER] = build_policy(policy)
