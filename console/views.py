from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render

from routing import roles
from routing.models import Agent
from routing.states import not_ready_choices, status_label


@login_required
def console(request: HttpRequest) -> HttpResponse:
    agent = Agent.objects.filter(user=request.user).prefetch_related("queues").first()
    is_supervisor = roles.is_supervisor(request.user)
    if agent is None and is_supervisor:
        # "/" is where every login lands; a supervisor's work is the dashboard.
        return redirect("supervisor")
    context: dict = {"agent": agent, "is_supervisor": is_supervisor}
    if agent is not None:
        context["not_ready_reasons"] = not_ready_choices()
        context["agent_status_label"] = status_label(agent.status, agent.not_ready_reason)
        # Read by static/console/console.js: the page carries no inline script (CSP).
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
        }
    return render(request, "console/console.html", context)
