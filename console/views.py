from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from routing.models import Agent


@login_required
def console(request: HttpRequest) -> HttpResponse:
    agent = Agent.objects.filter(user=request.user).prefetch_related("queues").first()
    return render(request, "console/console.html", {"agent": agent})
