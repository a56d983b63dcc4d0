"""Real SIP for system tests: Debian's Kamailio running deploy/kamailio/kamailio.cfg as shipped,
rtpengine (userspace) beside it, and baresip user agents as callers and agents' phones, all on
loopback inside the test's own network namespace (scripts/ensure-sip installs them).

How a test module uses it (tests/system/test_pbx.py is the example):

    pytestmark = [*sip.namespace_marks(), pytest.mark.django_db(transaction=True)]
    test_in_own_network_namespace = sip.namespace_test(__file__)   # this very name

  `namespace_test` makes the one test that pytest runs outside: it re-executes pytest for the
  module inside `unshare -n -p -f --mount-proc` (the loopback interface brought up first), with
  its own embedded PostgreSQL and Redis (a test instance folder of its own), and passes when that
  run passes; its output is printed (see it with -s). Without the SIP packages it skips, and
  fails where RAPPORT_REQUIRE_BROWSER_TESTS is set (CI). Outside, the module's other tests are
  left out (deselected); inside, every process the
  run starts (Rapport's servers, Kamailio, rtpengine, baresip, Chromium) is on a loopback no
  other run shares, and dies with the namespace.

Inside, Rapport's web server and the PBX (Kamailio + rtpengine) for the module, configured for
each other (Generic CTI token, softphone secret, WebSocket URL, route hint token):

    @pytest.fixture(scope="module")
    def servers(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock(), sip.rapport_and_pbx() as (rapport, pbx):
            yield rapport, pbx

  and in each test (the database is emptied between tests) `sip.allow_route_hint()`, a queue
  whose `numbers` callers dial, and agents whose telephony identity is their extension. Then:

        pbx.ws_url                 # ws://127.0.0.1:<port>: SOFTPHONE_WEBSOCKET_URL, for JsSIP
        pbx.sip_uri("1001")        # sip:1001@127.0.0.1:<port>
        dana = pbx.phone("1001", credentials=sip.softphone_credentials(rapport, user))
                                   # a baresip UA registered as agent 1001 (auto-answer; or
                                   # answer="manual": .answer(), .hangup() declines with 486)
        caller = pbx.caller("+14155550123")   # an unregistered baresip UA, the phone network
        dialled_at = caller.dial(pbx.sip_uri("+18005550100"))
        dana.wait_for("CALL_ESTABLISHED"); caller.wait_for("CALL_ESTABLISHED")
        caller.hangup(); caller.wait_for("CALL_CLOSED")
        sip.dominant_hz(caller.heard())   # the WAV of what the caller heard (baresip's sndfile)
        pbx.close_phones()         # at the end of each test: its phones unregister and stop

  `pbx.credentials(identity)` are the softphone's (telephony.sip.credentials' scheme) for a
  browser registering over `pbx.ws_url`. Phones send a sine tone (`tone_hz`): a WAV holding
  the other side's tone is proof that RTP flowed that way (`dominant_hz`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from development.pbx import BARESIP as BARESIP_BINARY
from development.pbx import (
    DOMAIN,
    KAMAILIO_CFG,
    PORTS_PER_BARESIP,
    baresip_home,
    kamailio_command,
    kamailio_environment,
    rtpengine_command,
)
from development.pbx import missing_tools as pbx_missing_tools
from infrastructure.paths import RUNTIME_DIR
from tests.support.browser_skips import REQUIRED
from tests.support.servers import RapportServers, served

REPO = Path(__file__).resolve().parents[2]
IN_NAMESPACE = "RAPPORT_SIP_NAMESPACE"
TOOLS = {"unshare": "/usr/bin/unshare", "ip": "/usr/sbin/ip"}
# What Rapport and its PBX share in a test run (Rapport's settings of the same names).
CTI_TOKEN = secrets.token_urlsafe(32)
SHARED_SECRET = secrets.token_urlsafe(32)
HINT_TOKEN = "pbx-route-hint-" + secrets.token_hex(12)
# Phones' SIP, control and RTP ports, counted up from here (below rtpengine's 30000-30999 and
# the kernel's ephemeral range).
_next_port = 20000


def missing_tools() -> list[str]:
    return [path for path in TOOLS.values() if not os.access(path, os.X_OK)] + pbx_missing_tools()


def in_namespace() -> bool:
    return os.environ.get(IN_NAMESPACE) == "1"


NAMESPACE_TEST = "test_in_own_network_namespace"


def namespace_marks() -> list[Any]:
    """For the module: its scenarios run only inside the namespace `namespace_test` makes."""
    return [pytest.mark.sip_namespace]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside the namespace only a module's launcher runs; inside, everything but it. The
    others are left out, not skipped: nothing that cannot run here counts as a skip (a skipped
    browser test fails CI, tests/support/browser_skips.py)."""
    inside = in_namespace()
    left_out = [
        item
        for item in items
        if item.get_closest_marker("sip_namespace") is not None
        and (item.name == NAMESPACE_TEST) == inside
    ]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


def namespace_test(module_file: str):
    """The test pytest runs outside the namespace: the module's scenarios, re-run inside it."""

    def test_in_own_network_namespace() -> None:
        missing = missing_tools()
        if missing:
            message = "SIP tools missing (scripts/ensure-sip): " + ", ".join(missing)
            if os.environ.get(REQUIRED):
                pytest.fail(message)
            pytest.skip(message)
        result = run_in_namespace(module_file)
        print(result.stdout[-20000:])
        assert result.returncode == 0, result.stdout[-20000:]
        summary = result.stdout.strip().splitlines()[-1]
        assert " passed" in summary and "skipped" not in summary, result.stdout[-20000:]

    return test_in_own_network_namespace


def run_in_namespace(module_file: str, *pytest_args: str) -> subprocess.CompletedProcess:
    """pytest for `module_file` in a new network and PID namespace, loopback up, its own
    embedded PostgreSQL and Redis (the outer run's Redis is on a loopback it cannot reach)."""
    private = ("DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR", "PYTEST_CURRENT_TEST")
    env = {k: v for k, v in os.environ.items() if k not in private}
    env[IN_NAMESPACE] = "1"
    instance = os.environ.get("RAPPORT_TEST_INSTANCE", "test") + "-sip"
    env["RAPPORT_TEST_INSTANCE"] = instance
    _forget_servers_of_dead_namespaces(RUNTIME_DIR / instance)
    inner = [
        sys.executable,
        *("-m", "pytest", module_file, "-q", "-s", "-p", "no:cacheprovider"),
        *pytest_args,
    ]
    script = "ip link set lo up && exec " + " ".join(_quoted(part) for part in inner)
    return subprocess.run(
        [TOOLS["unshare"], "-n", "-p", "-f", "--mount-proc", "--kill-child", "sh", "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


def _forget_servers_of_dead_namespaces(root: Path) -> None:
    """The servers an earlier namespace started died with it; a run that was killed left their
    process ids behind, which in a new PID namespace may be any live process's."""
    for stale in ("postgres/postmaster.pid", "postgres/.handle_pids.json", "redis/redis.pid"):
        (root / stale).unlink(missing_ok=True)


def _quoted(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ephemeral_credentials(identity: str, *, secret: str, lifetime: int = 3600) -> dict[str, str]:
    """The softphone scheme (telephony.sip.credentials), written again from its definition so a
    test can tell when Rapport's and Kamailio's disagree."""
    username = f"{int(time.time()) + lifetime}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "password": base64.b64encode(digest).decode()}


# --- Rapport and its PBX together ---------------------------------------------------------------


@contextlib.contextmanager
def rapport_and_pbx(
    *, with_worker: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[RapportServers, Pbx]]:
    """Rapport's web server (`tests.support.servers.served`, call with the database unblocked)
    with Generic CTI and the softphone configured for the PBX started beside it: the shipped
    Kamailio and rtpengine. Each test must still let the PBX ask the route hint
    (`allow_route_hint`: the test database is emptied between tests)."""
    sip_port, ws_port = free_port(socket.SOCK_DGRAM), free_port()
    env = {
        "TELEPHONY_CTI_TOKEN": CTI_TOKEN,
        "SOFTPHONE_SHARED_SECRET": SHARED_SECRET,
        "SOFTPHONE_WEBSOCKET_URL": f"ws://127.0.0.1:{ws_port}",
        "SOFTPHONE_SIP_DOMAIN": DOMAIN,
        **(extra_env or {}),
    }
    with (
        served(with_worker=with_worker, extra_env=env) as servers,
        pbx(
            rapport_url=servers.base_url,
            route_hint_token=HINT_TOKEN,
            cti_token=CTI_TOKEN,
            shared_secret=SHARED_SECRET,
            sip_port=sip_port,
            ws_port=ws_port,
        ) as the_pbx,
    ):
        yield servers, the_pbx


def allow_route_hint() -> None:
    """The user whose token (HINT_TOKEN) the PBX asks the route hint with: one who may view
    calls, as docs/telephony.md says to make."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    hinting = User.objects.create_user("pbx")
    hinting.user_permissions.add(Permission.objects.get(codename="view_call"))
    Token.objects.create(user=hinting, key=HINT_TOKEN)


def softphone_credentials(servers: RapportServers, user: Any) -> dict[str, Any]:
    """What the console's softphone registers with: Rapport's GET /api/softphone/ for `user`
    (signed in), which Kamailio's auth_ephemeral then checks."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = httpx.get(
        servers.base_url + "/api/softphone/",
        cookies={"sessionid": client.cookies["sessionid"].value},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- the PBX: Kamailio + rtpengine ---------------------------------------------------------------


@dataclass
class Pbx:
    workdir: Path
    sip_port: int
    ws_port: int
    shared_secret: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    _phones: list[Baresip] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def sip_uri(self, user: str) -> str:
        return f"sip:{user}@{self.address}"

    def credentials(self, identity: str) -> dict[str, str]:
        return ephemeral_credentials(identity, secret=self.shared_secret)

    def phone(
        self,
        identity: str,
        *,
        answer: str = "auto",
        tone_hz: int = 440,
        credentials: dict[str, str] | None = None,
    ) -> Baresip:
        """A baresip UA registered as agent `identity` (with `credentials`, e.g. Rapport's
        GET /api/softphone/ answer; else the harness's own), answering `auto` or `manual`."""
        credentials = credentials or self.credentials(identity)
        account = (
            f"<sip:{identity}@{DOMAIN}>;auth_user={credentials['username']}"
            f';auth_pass={credentials["password"]};outbound="sip:{self.address}"'
            f";answermode={answer};regint=600;audio_codecs=pcmu"
        )
        phone = self._start_baresip(f"agent-{identity}", account, tone_hz=tone_hz)
        # It registers as it starts, before its control socket can hear of it: read its log.
        phone.wait_for_log(" 200 OK ", timeout=10)
        return phone

    def caller(self, number: str, *, tone_hz: int = 880) -> Baresip:
        """A baresip UA for a caller from the phone network: registers nowhere."""
        account = (
            f'<sip:{number}@caller.invalid>;outbound="sip:{self.address}";regint=0'
            ";audio_codecs=pcmu"
        )
        return self._start_baresip(f"caller-{number.lstrip('+')}", account, tone_hz=tone_hz)

    def _start_baresip(self, name: str, account: str, *, tone_hz: int) -> Baresip:
        home, _, control_port = baresip_home(
            self.workdir / name, account, first_port=self._ports(PORTS_PER_BARESIP), tone_hz=tone_hz
        )
        log = home / "baresip.log"
        process = subprocess.Popen(
            [BARESIP_BINARY, "-f", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        self.logs[name] = log
        phone = Baresip(name=name, process=process, control_port=control_port, home=home)
        phone.connect()
        self._phones.append(phone)
        return phone

    def _ports(self, count: int) -> int:
        """`count` consecutive ports no other phone of this run has (baresip binds port and
        port+1; the namespace's loopback is this run's alone)."""
        global _next_port
        first = _next_port
        _next_port += count + (count % 2)
        return first

    def close_phones(self) -> None:
        """Stops every phone and caller started so far (a phone unregisters as it stops)."""
        for phone in self._phones:
            phone.close()
        self._phones.clear()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(
            f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for name, path in self.logs.items()
        )


@contextlib.contextmanager
def pbx(
    *,
    rapport_url: str,
    route_hint_token: str,
    cti_token: str,
    shared_secret: str,
    route_hint_url: str | None = None,
    hint_timeout_seconds: int = 1,
    sip_port: int | None = None,
    ws_port: int | None = None,
) -> Iterator[Pbx]:
    """rtpengine and Kamailio with deploy/kamailio/kamailio.cfg as shipped, its environment this
    run's; `route_hint_url` stands for Rapport's URL in the route hint alone (a closed port: the
    hint is down). Stopped, with every phone started through it, on leaving."""
    workdir = Path(tempfile.mkdtemp(prefix="rapport-sip-"))
    sip_port = sip_port or free_port(socket.SOCK_DGRAM)
    ws_port = ws_port or free_port()
    rtpengine_port = free_port(socket.SOCK_DGRAM)
    the_pbx = Pbx(workdir=workdir, sip_port=sip_port, ws_port=ws_port, shared_secret=shared_secret)
    try:
        _start(the_pbx, "rtpengine", rtpengine_command(rtpengine_port))
        _wait_for_text(the_pbx, "rtpengine", "Startup complete", timeout=10)
        environment = kamailio_environment(
            rapport_url=rapport_url,
            route_hint_token=route_hint_token,
            cti_token=cti_token,
            shared_secret=shared_secret,
            sip_port=sip_port,
            ws_port=ws_port,
            rtpengine_port=rtpengine_port,
            hint_timeout_seconds=hint_timeout_seconds,
        )
        _start(
            the_pbx,
            "kamailio",
            kamailio_command(workdir, cfg=_kamailio_cfg(workdir, route_hint_url)),
            env={**os.environ, **environment},
        )
        _wait_for_listening(the_pbx, "kamailio", timeout=10)
        yield the_pbx
    finally:
        the_pbx.close_phones()
        for process in reversed(list(the_pbx.processes.values())):
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _kamailio_cfg(workdir: Path, route_hint_url: str | None) -> Path:
    """The shipped file; with `route_hint_url`, its route hint asked there instead."""
    if route_hint_url is None:
        return KAMAILIO_CFG
    text = KAMAILIO_CFG.read_text()
    asked = 'RAPPORT_URL + "/api/telephony/route-hint/'
    assert asked in text, "the route hint URL moved in kamailio.cfg"
    cfg = workdir / "kamailio-hint-elsewhere.cfg"
    cfg.write_text(text.replace(asked, f'"{route_hint_url}/api/telephony/route-hint/'))
    return cfg


def _start(
    the_pbx: Pbx, name: str, command: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen:
    log = the_pbx.workdir / f"{name}.log"
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    the_pbx.processes[name] = process
    the_pbx.logs[name] = log
    return process


def _wait_for_listening(the_pbx: Pbx, name: str, *, timeout: float) -> None:
    """Until Kamailio listens (its children are up); raises with its log if it exits."""
    deadline = time.monotonic() + timeout
    process, log = the_pbx.processes[name], the_pbx.logs[name]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{the_pbx.log_tail()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", the_pbx.ws_port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")


def _wait_for_text(the_pbx: Pbx, name: str, text: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    process, log = the_pbx.processes[name], the_pbx.logs[name]
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{the_pbx.log_tail()}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 15)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait()


# --- baresip, driven over ctrl_tcp ---------------------------------------------------------------


@dataclass
class Baresip:
    """One baresip process with one account; its ctrl_tcp socket sends commands and reads
    events (JSON in netstrings)."""

    name: str
    process: subprocess.Popen
    control_port: int
    home: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _socket: socket.socket | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    def connect(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"baresip {self.name} exited:\n{self.log()}")
            try:
                self._socket = socket.create_connection(("127.0.0.1", self.control_port), 0.5)
                break
            except OSError as refused:
                if time.monotonic() > deadline:
                    message = f"baresip {self.name} has no control:\n{self.log()}"
                    raise RuntimeError(message) from refused
                time.sleep(0.05)
        self._socket.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._socket.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                length, _, rest = buffer.partition(b":")
                size = int(length)
                if len(rest) < size + 1:
                    break
                message = json.loads(rest[:size])
                buffer = rest[size + 1 :]
                with self._changed:
                    message["at"] = time.monotonic()
                    self.events.append(message)
                    self._changed.notify_all()

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._socket.sendall(str(len(body)).encode() + b":" + body + b",")

    def dial(self, uri: str) -> float:
        """Dials `uri`; the monotonic time it was asked to."""
        started = time.monotonic()
        self.command("dial", uri)
        return started

    def answer(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def wait_for(self, event_type: str, *, timeout: float = 10, after: float = 0) -> dict:
        """The first event of `event_type` (baresip's: CALL_INCOMING, CALL_RINGING,
        CALL_ESTABLISHED, CALL_CLOSED, REGISTER_OK...) that came at or after `after`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if event.get("type") == event_type and event["at"] >= after:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [event.get("type") for event in self.events]
                    raise AssertionError(
                        f"baresip {self.name}: no {event_type} in {timeout}s; saw {seen}\n"
                        + self.log()
                    )
                self._changed.wait(left)

    def wait_for_log(self, text: str, *, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"baresip {self.name}: {text!r} never logged:\n{self.log()}")
            time.sleep(0.05)

    def heard(self) -> Path:
        """The WAV of what this UA heard on its last call (sndfile's `-dec` file)."""
        recordings = sorted(
            (self.home / "recordings").glob("*dec*.wav"), key=lambda path: path.stat().st_mtime
        )
        assert recordings, f"baresip {self.name} recorded nothing:\n{self.log()}"
        return recordings[-1]

    def log(self) -> str:
        path = self.home / "baresip.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        _stop(self.process)


def dominant_hz(recording: Path) -> float:
    """The strongest frequency of a WAV (its first channel), by counting zero crossings: enough
    to tell a 440 Hz tone from an 880 Hz one, and from silence (0)."""
    with wave.open(str(recording)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")[::channels]
    loud = [sample for sample in samples if abs(sample) > 300]
    if len(loud) < rate // 10:
        return 0.0
    crossings = sum(
        1
        for before, after in zip(samples, samples[1:], strict=False)
        if (before < 0) != (after < 0)
    )
    return crossings / 2 / (len(samples) / rate)
