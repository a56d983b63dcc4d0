import pytest
from django.contrib.auth.models import Group, User

from customers.models import Customer, PhoneNumber
from infrastructure import broadcast
from infrastructure.database import on_loop
from routing.models import Agent, Queue
from tests.support.routing import FAST_PASSWORD_HASHERS

# The telephony systems' fixtures serve every test module: `webhook_secret` and `phone_system`
# (the signed format), `twilio_api`, `twilio_settings` and `twilio` (Twilio), `cti_client_python`
# (Generic CTI).
pytest_plugins = [
    "tests.support.browser_skips",
    "tests.support.telephony",
    "tests.support.twilio",
    "tests.support.generic_cti",
    "tests.support.sip",
]


@pytest.fixture
def queue(db) -> Queue:
    return Queue.objects.create(slug="loyalty", name="Loyalty", numbers=["+18005550100"])


@pytest.fixture
def make_agent(db, queue):
    def make(
        username: str = "dana",
        *,
        extension: str | None = None,
        status: str = "offline",
        queues=None,
    ) -> Agent:
        user = User.objects.create_user(username=username, password="pw-" + username)
        user.groups.add(Group.objects.get_or_create(name="agent")[0])
        agent = Agent.objects.create(
            user=user,
            display_name=username.title(),
            telephony_identity=extension or f"ext-{username}",
            status=status,
        )
        agent.queues.set(queues if queues is not None else [queue])
        return agent

    return make


@pytest.fixture
def fast_logins(settings):
    """Passwords hashed in a blink, for a module that logs many people in: only where no
    server of its own (with the default hashers) has to check them."""
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture
def make_customer(db):
    def make(name: str = "Maya Chen", *, phones=("+14155550123",), **fields) -> Customer:
        customer = Customer.objects.create(name=name, **fields)
        for number in phones:
            PhoneNumber.objects.create(customer=customer, number=number)
        return customer

    return make


@pytest.fixture(autouse=True)
def no_webhook_rate_limit(settings):
    """Tests fire events faster than any telephony system; the limit has its own test."""
    settings.TELEPHONY_RATE_LIMIT = ""


@pytest.fixture(autouse=True)
def loop_connections_closed():
    """Each test's sockets run on an event loop of their own: their database connection
    (infrastructure.database.on_loop) is closed with the test, not left open."""
    yield
    on_loop.close_all()


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, dict]]:
    """What the router sends to agents' screens, as (agent id, message), instead of sending it."""
    messages: list[tuple[int, dict]] = []
    monkeypatch.setattr(
        broadcast,
        "send_to_agent",
        lambda agent_id, message: messages.append((agent_id, message)),
    )
    return messages
