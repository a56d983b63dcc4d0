"""How strong a shared secret token must be: one rule for every token Rapport is configured with
(the Generic CTI token in its URL, the metrics token in a scraper's header). Each is refused at
start when weak, by its app's system check."""

from __future__ import annotations

MIN_CHARACTERS = 24
MIN_DISTINCT_CHARACTERS = 10


def weak_token_problem(token: str) -> str | None:
    """Why `token` is too weak to guard anything, or None when it is strong enough. Never names
    the token."""
    if len(token) < MIN_CHARACTERS:
        return f"is {len(token)} characters long; use at least {MIN_CHARACTERS} random ones"
    if len(set(token)) < MIN_DISTINCT_CHARACTERS:
        return f"repeats too few characters to be random (fewer than {MIN_DISTINCT_CHARACTERS})"
    return None
