from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from routing.states import AgentStatus, CallState, OfferState

# An agent whose last call's queue is gone still leaves wrap-up after this long.
DEFAULT_WRAP_UP_SECONDS = 120
DEFAULT_OFFER_TIMEOUT_SECONDS = 15


class CallerChoice(models.TextChoices):
    """What a caller held for their busy last agent chose (docs/telephony.md, "The caller's
    choice")."""

    WAIT = "wait", "Chose to wait for their agent"
    NEXT_COLLEAGUE = "next", "Chose the next colleague"
    CALLBACK = "callback", "Asked for a call back"


class Queue(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    numbers = ArrayField(
        models.CharField(max_length=32),
        default=list,
        blank=True,
        help_text="Dialled numbers (E.164) that reach this queue.",
    )
    last_agent_wait_seconds = models.PositiveIntegerField(
        default=20, help_text="How long a caller is held for their busy last agent."
    )
    hold_averse_wait_seconds = models.PositiveIntegerField(
        default=0,
        help_text=(
            "How long a caller who avoids holding or is in a rush is held for their busy last"
            " agent; 0 sends them straight to the queue."
        ),
    )
    offer_timeout_seconds = models.PositiveIntegerField(
        default=DEFAULT_OFFER_TIMEOUT_SECONDS,
        help_text="How long an offer rings before it is taken back.",
    )
    wrap_up_seconds = models.PositiveIntegerField(
        default=DEFAULT_WRAP_UP_SECONDS,
        help_text="Longest wrap-up before the agent is made available again.",
    )
    last_agent_lookback_days = models.PositiveIntegerField(default=180)
    service_level_seconds = models.PositiveIntegerField(
        default=20, help_text="Target: answered within this many seconds."
    )
    callback_attempts = models.PositiveIntegerField(
        default=3,
        help_text="How often a call back is tried before it goes on the supervisor's list.",
    )
    callback_retry_seconds = models.PositiveIntegerField(
        default=300, help_text="How long after a call back not answered it is tried again."
    )
    wrap_up_code_required = models.BooleanField(
        default=False,
        help_text="An agent chooses one of the queue's wrap-up codes before Ready.",
    )

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["numbers"], name="queue_numbers_gin", opclasses=["array_ops"])
        ]

    def __str__(self) -> str:
        return self.name


# What a queue starts with: label, key, whether it promises the caller a call back.
DEFAULT_WRAP_UP_CODES = (
    ("Exchange arranged", 1, False),
    ("Refund", 2, False),
    ("Question answered", 3, False),
    ("Call back promised", 4, True),
)


class WrapUpCode(models.Model):
    """One outcome an agent chooses at wrap-up, with a digit key on the console."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="wrap_up_codes")
    label = models.CharField(max_length=60)
    key = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(9)],
        help_text="The digit (1-9) that chooses it on the console; also its place in the list.",
    )
    promises_call_back = models.BooleanField(
        default=False,
        help_text="The agent promised to call back: the caller's next call says so first.",
    )
    active = models.BooleanField(
        default=True, help_text="Offered at wrap-up. Calls keep a retired code's label."
    )

    class Meta:
        ordering = ["queue", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "key"],
                condition=Q(active=True),
                name="one_active_wrap_up_code_per_key",
            ),
            models.UniqueConstraint(
                fields=["queue", "label"],
                condition=Q(active=True),
                name="one_active_wrap_up_code_per_label",
            ),
            models.CheckConstraint(
                condition=Q(key__gte=1, key__lte=9), name="wrap_up_code_key_is_a_digit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}. {self.label}"


class Agent(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent"
    )
    display_name = models.CharField(max_length=100)
    telephony_identity = models.CharField(
        max_length=64, unique=True, help_text="Extension or username at the telephony system."
    )
    queues = models.ManyToManyField(Queue, related_name="agents", blank=True)
    status = models.CharField(
        max_length=16, choices=AgentStatus.choices, default=AgentStatus.OFFLINE
    )
    status_changed_at = models.DateTimeField(db_default=Now())
    not_ready_reason = models.CharField(
        max_length=32,
        blank=True,
        help_text="Why the agent is not ready (status break), from settings.NOT_READY_REASONS.",
    )
    # Not "their latest call": a call handed to a colleague is the colleague's, yet its wrap-up
    # is the first agent's.
    wrap_up_call = models.ForeignKey(
        "Call",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=(
            "With status wrap_up: the call being wrapped up (it ended, or the agent handed it to"
            " a colleague). Its queue sets the wrap-up limit; the caller is shown until it ends."
        ),
    )

    class Meta:
        ordering = ["display_name"]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="agent_idle_order")]

    def __str__(self) -> str:
        return self.display_name


class AgentStatusChange(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="status_changes")
    status = models.CharField(max_length=16, choices=AgentStatus.choices)
    previous_status = models.CharField(max_length=16, choices=AgentStatus.choices)
    changed_at = models.DateTimeField(db_default=Now())
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(
        max_length=100,
        blank=True,
        help_text=(
            "What caused the change: set_by_agent, offer_accepted, offer_timed_out, ready,"
            " wrap_up_limit, or set_by_supervisor with what they typed."
        ),
    )
    not_ready_reason = models.CharField(
        max_length=32,
        blank=True,
        help_text="With status break: the not-ready reason the agent then had (lunch, ...).",
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "-changed_at"], name="status_change_agent_latest"),
            models.Index(fields=["changed_at"], name="status_change_when"),
        ]


class Call(models.Model):
    telephony_call_id = models.CharField(max_length=128, unique=True)
    from_number = models.CharField(
        max_length=64, blank=True, help_text="As the telephony system sent it."
    )
    from_e164 = models.CharField(max_length=32, blank=True, db_index=True)
    to_number = models.CharField(max_length=64, blank=True)
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    candidates = models.ManyToManyField(
        "customers.Customer",
        blank=True,
        related_name="candidate_calls",
        help_text="Customers sharing the caller's number, until the agent says who is calling.",
    )
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
        help_text="The agent connected to the caller.",
    )
    state = models.CharField(max_length=16, choices=CallState.choices, default=CallState.RINGING)
    identity_verified = models.BooleanField(default=False)
    end_reason = models.CharField(max_length=32, blank=True)

    created_at = models.DateTimeField(db_default=Now())
    ringing_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(db_default=Now())
    last_event_at = models.DateTimeField(
        null=True, blank=True, help_text="occurred_at of the latest event applied to the state."
    )

    # Router bookkeeping: the deadlines live in the database so a restarted worker keeps them.
    last_agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The agent of the caller's most recent connected call, when routing began.",
    )
    last_agent_wait_until = models.DateTimeField(null=True, blank=True)

    # The caller's own answer while held for their busy last agent (telephony: a keypad choice).
    caller_asked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the caller was asked whether to keep waiting."
    )
    caller_choice = models.CharField(max_length=16, choices=CallerChoice.choices, blank=True)
    caller_choice_at = models.DateTimeField(null=True, blank=True)
    callback = models.ForeignKey(
        "Callback",
        null=True,
        blank=True,
        # The try stays a call the queue's figures count once its call back is erased.
        on_delete=models.SET_NULL,
        related_name="attempts_made",
        help_text="Set on a call Rapport places to call a customer back (one per attempt).",
    )
    # The outcome the agent chose at wrap-up. The label and the promise are kept on the call:
    # a code retired or deleted later leaves the history, the day's counts and the next call's
    # "call back promised" as they were.
    wrap_up_code = models.ForeignKey(
        WrapUpCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    wrap_up_label = models.CharField(max_length=60, blank=True)
    call_back_promised = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "-connected_at"],
                name="call_customer_latest",
                condition=Q(connected_at__isnull=False),
            ),
            models.Index(fields=["state", "queued_at"], name="call_state_waiting"),
            models.Index(fields=["queue", "-created_at"], name="call_queue_recent"),
        ]

    def __str__(self) -> str:
        return self.telephony_call_id


class Offer(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="offers")
    state = models.CharField(max_length=16, choices=OfferState.choices, default=OfferState.OFFERED)
    offered_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    # A hand-off: the agent on the call offers it to this colleague (routing.transfers). The
    # call stays with them until the phone system reports the transfer.
    handoff_from = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="With a transfer from the console: the agent handing the call over.",
    )
    # A database default: the router inserts its offers in SQL of its own (routing.offers).
    handoff_note = models.CharField(
        max_length=200,
        blank=True,
        db_default="",
        help_text="The one-line hand-off the colleague reads first.",
    )

    class Meta:
        ordering = ["-offered_at", "-id"]
        # The database itself refuses a second ringing offer for an agent or for a call.
        constraints = [
            models.UniqueConstraint(
                fields=["agent"], condition=Q(state="offered"), name="one_open_offer_per_agent"
            ),
            models.UniqueConstraint(
                fields=["call"], condition=Q(state="offered"), name="one_open_offer_per_call"
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], name="offer_open_expiry", condition=Q(state="offered")
            )
        ]


class DecisionReason(models.TextChoices):
    LAST_AGENT = "last_agent", "Offered to the caller's last agent"
    LAST_AGENT_BUSY_WAITED = "last_agent_busy_waited", "Waited for the busy last agent"
    LAST_AGENT_UNAVAILABLE = "last_agent_unavailable", "Last agent offline or not ready"
    LAST_AGENT_DECLINED = "last_agent_declined", "Last agent declined"
    LAST_AGENT_WAIT_EXPIRED = "last_agent_wait_expired", "Last agent still busy after the wait"
    LAST_AGENT_BUSY_NOT_HELD = (
        "last_agent_busy_not_held",
        "Last agent busy; caller not held (avoids holding or in a rush)",
    )
    OFFER_TIMED_OUT = "offer_timed_out", "Offer not answered in time"
    OFFER_DECLINED = "offer_declined", "Offer declined"
    AGENT_ON_ANOTHER_CALL = "agent_on_another_call", "Offer withdrawn: the agent took another call"
    LONGEST_IDLE = "longest_idle", "Longest-idle available agent"
    NO_AGENT_WAITING = "no_agent_waiting", "No agent available: caller waits"
    WAITING_LAST_AGENT_FREED = "waiting_last_agent_freed", "Waiting caller's last agent freed up"
    WAITING_FIFO = "waiting_fifo", "Longest-waiting caller offered to a freed agent"
    TELEPHONY_ANSWERED = "telephony_answered", "Answered at the telephony system"
    MOVED_BY_SUPERVISOR = "moved_by_supervisor", "Moved to another queue by a supervisor"
    CALLER_CHOSE_NEXT = "caller_chose_next", "The caller chose the next colleague"
    TRANSFER_OFFERED = "transfer_offered", "Offered by the agent on the call (a hand-off)"
    TRANSFER_NOT_TAKEN = (
        "transfer_not_taken",
        "Hand-off declined, not answered or withdrawn: the caller stays with the first agent",
    )


# After one of these the call no longer waits for its last agent: it is open to the queue.
FALLBACK_REASONS = frozenset(
    {
        DecisionReason.LAST_AGENT_UNAVAILABLE,
        DecisionReason.LAST_AGENT_DECLINED,
        DecisionReason.LAST_AGENT_WAIT_EXPIRED,
        DecisionReason.LAST_AGENT_BUSY_NOT_HELD,
        DecisionReason.OFFER_TIMED_OUT,
        DecisionReason.OFFER_DECLINED,
        DecisionReason.CALLER_CHOSE_NEXT,
    }
)
# After one of these the call simply waits; any other latest decision means the router owes it one.
WAITING_REASONS = frozenset(
    {DecisionReason.NO_AGENT_WAITING, DecisionReason.LAST_AGENT_BUSY_WAITED}
)


class RoutingDecision(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="decisions")
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    offer = models.OneToOneField(
        Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="decision"
    )
    reason = models.CharField(max_length=32, choices=DecisionReason.choices)
    decided_at = models.DateTimeField(db_default=Now())
    caller_waited_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the call reaching the queue to this decision."
    )
    took_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time spent deciding.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["decided_at", "id"]


class CallbackState(models.TextChoices):
    WAITING = "waiting", "Waiting in the queue"
    DIALLING = "dialling", "Being placed"
    REACHED = "reached", "Reached"
    NOT_REACHED = "not_reached", "Not reached"
    MATCHED = "matched", "The caller rang again"


# A call back still to be made: one per number and queue (a caller who rings again is matched).
PENDING_CALLBACK_STATES = frozenset({CallbackState.WAITING, CallbackState.DIALLING})


class Callback(models.Model):
    """A caller's request to be called back. Each try is a Call (`Call.callback`) that waits in
    the queue at the caller's original place and is routed like any call."""

    requested_on = models.OneToOneField(
        Call, on_delete=models.CASCADE, related_name="callback_requested"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="callbacks",
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="callbacks")
    number = models.CharField(max_length=32, help_text="The customer's number, E.164.")
    from_number = models.CharField(max_length=64, blank=True, help_text="The number they dialled.")
    place = models.DateTimeField(help_text="When the caller first reached the queue.")
    state = models.CharField(
        max_length=16, choices=CallbackState.choices, default=CallbackState.WAITING
    )
    agent_dials = models.BooleanField(
        default=False,
        help_text=(
            "No phone system places it (a Generic CTI PBX, a phone system that pulls): the agent"
            " dials the number their console shows and says whether they reached the customer."
        ),
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["place", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "number"],
                condition=Q(state__in=["waiting", "dialling"]),
                name="one_pending_callback_per_number",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="callback_retry_due",
                condition=Q(next_attempt_at__isnull=False),
            )
        ]


class Voicemail(models.Model):
    """A message the caller left when nobody could answer, or after asking for a call back:
    customer data (docs/privacy.md). The audio stays with the phone system; Rapport keeps where
    it is and serves it to whoever may hear it (telephony.voicemails)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="voicemails")
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="voicemails",
    )
    callback = models.ForeignKey(
        Callback, null=True, blank=True, on_delete=models.SET_NULL, related_name="voicemails"
    )
    recording_sid = models.CharField(max_length=64, unique=True)
    recording_url = models.URLField(max_length=300)
    duration_seconds = models.PositiveIntegerField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["created_at", "id"]
