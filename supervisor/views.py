from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from customers.audit import record_first_sight
from customers.models import AccessReason
from routing import roles
from routing import selectors as routing_selectors
from routing.states import not_ready_choices, status_labels
from supervisor import floor, reunion, wall
from supervisor.labels import NOT_REUNITED_LABELS


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    if not roles.is_supervisor(request.user):
        raise PermissionDenied("The dashboard is for supervisors.")
    figures = {"type": "snapshot", **wall.figures(timezone.now(), caller_names=True)}
    record_first_sight(
        shown=floor.callers_named(figures), user=request.user, reason=AccessReason.SUPERVISOR
    )
    context = {
        "figures": figures,
        "reunion_table": reunion.reunion_table(),
        # Read by supervisor/static/supervisor/page.js (the page carries no inline script).
        "labels": {
            "statuses": status_labels(),
            "not_ready_reasons": not_ready_choices(),
            "not_reunited": NOT_REUNITED_LABELS,
        },
        "has_console": routing_selectors.agent_id_for_user(request.user) is not None,
    }
    return render(request, "supervisor/dashboard.html", context)
