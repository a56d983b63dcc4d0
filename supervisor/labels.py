"""What the dashboard calls why a returning caller missed their own agent today.

Its keys are the figures' `not_reunited` keys (`supervisor.reunion`), in the order the wall
lists them; the page gets the labels in its config (`supervisor/views.py`).
"""

NOT_REUNITED_LABELS: dict[str, str] = {
    "busy_past_wait": "Agent still busy after the wait",
    "not_held": "Agent busy; caller not held (avoids holding, in a rush)",
    "offline_or_break": "Agent offline or not ready",
    "declined": "Agent declined",
    "timed_out": "Offer not answered in time",
    "chose_next": "Caller chose the next colleague",
    "callback_not_by_own_agent": "Called back by a colleague, or not reached",
    "caller_hung_up": "Caller hung up first",
    "other": "Other (e.g. moved)",
}
