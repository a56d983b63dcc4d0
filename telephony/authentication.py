"""Who may ask the telephony endpoints: a request signed with the webhook secret (Standard
Webhooks), or, for what a phone system asks without a body (the pull, the route hint), the API
token of a user allowed to view calls."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import exceptions
from rest_framework.request import Request

from telephony.signing import (
    SIGNATURE_HEADERS,
    SignatureRejected,
    VerifiedRequest,
    is_first_use,
    signed_request_content,
    verify_signature,
)


def verified_signature(*, body: bytes, headers: Mapping[str, str]) -> VerifiedRequest:
    """The request's signature checked over `body`; the API's 401 otherwise."""
    try:
        return verify_signature(body=body, headers=headers)
    except SignatureRejected as rejected:
        raise exceptions.AuthenticationFailed(str(rejected)) from rejected


def authorise_pull(request: Request) -> None:
    """A request the telephony system makes without a body (a pull, a route hint): signed over
    its method and path, each webhook-id once, or an API token of a user allowed to view calls."""
    if any(request.headers.get(name) for name in SIGNATURE_HEADERS):
        content = signed_request_content(method=request.method, path=request.path)
        verified = verified_signature(body=content.encode(), headers=request.headers)
        if not is_first_use(verified.webhook_id):
            raise exceptions.AuthenticationFailed(
                "This webhook-id was already used: sign every request afresh."
            )
    elif not (request.user.is_authenticated and request.user.has_perm("routing.view_call")):
        raise exceptions.NotAuthenticated(
            "Sign the request or send the API token of a user allowed to view calls."
        )
