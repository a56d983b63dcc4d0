"""The control URL: where Rapport pushes its signed `call.connect` instructions.

A deliberately small HTTP/1.1 listener on asyncio streams (one request per connection, bodies
with a `Content-Length`): uvicorn would take over the process's SIGINT and SIGTERM, and the
simulator needs those to hang up its calls before it exits.

Answers: 200 for a call the simulator placed (also when it is already connected: a retried
push must stop), 404 for a call it does not know, 410 for one whose caller already hung up,
401 for a missing or bad signature, 400 for anything that is not a `call.connect`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from standardwebhooks import Webhook

from simulator.phone_system import ConnectOutcome
from simulator.signing import is_signed

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 100
READ_TIMEOUT_SECONDS = 10.0

ConnectHandler = Callable[[str, str, int | None], ConnectOutcome]
# A call back to place: (call id, the customer's number, the agent).
DialHandler = Callable[[str, str, str], ConnectOutcome]

STATUS_BY_OUTCOME = {
    ConnectOutcome.CONNECTING: HTTPStatus.OK,
    ConnectOutcome.ALREADY_CONNECTED: HTTPStatus.OK,
    ConnectOutcome.UNKNOWN_CALL: HTTPStatus.NOT_FOUND,
    ConnectOutcome.CALL_OVER: HTTPStatus.GONE,
}


class MalformedRequest(Exception):
    pass


@dataclass(frozen=True)
class ControlRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ControlListener:
    def __init__(
        self,
        *,
        webhook: Webhook,
        on_connect: ConnectHandler,
        host: str,
        port: int,
        path: str,
        on_dial: DialHandler | None = None,
    ) -> None:
        self.webhook = webhook
        self.on_connect = on_connect
        self.on_dial = on_dial
        self.host = host
        self.port = port
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                request = await _read_request(reader)
            status, answer = self.answer(request)
        except (MalformedRequest, ValueError, TimeoutError, asyncio.IncompleteReadError) as bad:
            status, answer = HTTPStatus.BAD_REQUEST, {"detail": f"Malformed request: {bad}"}
        try:
            writer.write(_response_bytes(status, answer))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def answer(self, request: ControlRequest) -> tuple[HTTPStatus, dict[str, Any]]:
        if request.path != self.path:
            return HTTPStatus.NOT_FOUND, {"detail": f"The control URL is {self.path}."}
        if request.method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED, {"detail": "POST a call.connect instruction."}
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as not_utf8:
            raise MalformedRequest("the body is not UTF-8") from not_utf8
        if not is_signed(self.webhook, text, request.headers):
            return HTTPStatus.UNAUTHORIZED, {"detail": "Missing or bad signature."}
        instruction = _instruction(text)
        if instruction.get("type") == "call.dial" and self.on_dial is not None:
            outcome = self.on_dial(*_dial_instruction(instruction))
            return STATUS_BY_OUTCOME[outcome], {"status": outcome.value}
        call_id, agent, decision_id = _connect_instruction(instruction)
        outcome = self.on_connect(call_id, agent, decision_id)
        return STATUS_BY_OUTCOME[outcome], {"status": outcome.value}


async def _read_request(reader: asyncio.StreamReader) -> ControlRequest:
    request_line = (await reader.readline()).decode("latin-1").split()
    if len(request_line) != 3:
        raise MalformedRequest("expected METHOD TARGET VERSION")
    method, target, _version = request_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or len(headers) >= MAX_HEADERS:
            raise MalformedRequest("bad header")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise MalformedRequest("send a Content-Length body")
    length = int(headers.get("content-length") or 0)
    if not 0 <= length <= MAX_BODY_BYTES:
        raise MalformedRequest(f"bodies are at most {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length)
    return ControlRequest(
        method=method.upper(), path=target.split("?", 1)[0], headers=headers, body=body
    )


def _instruction(text: str) -> dict[str, Any]:
    try:
        instruction = json.loads(text)
    except ValueError as not_json:
        raise MalformedRequest("the body is not JSON") from not_json
    if not isinstance(instruction, dict):
        raise MalformedRequest("expected a JSON object")
    return instruction


def _dial_instruction(instruction: dict[str, Any]) -> tuple[str, str, str]:
    """A `call.dial`: the call is placed under the id Rapport gave it (`call_id`), else one of
    the phone system's own naming the call back."""
    callback_id, to, agent = (instruction.get(name) for name in ("callback_id", "to", "agent"))
    if not (isinstance(callback_id, int) and isinstance(to, str) and to):
        raise MalformedRequest("callback_id and to are required")
    if not (isinstance(agent, str) and agent):
        raise MalformedRequest("agent is required")
    call_id = instruction.get("call_id")
    if not (isinstance(call_id, str) and call_id):
        raise MalformedRequest("call_id is required: this phone system places calls under it")
    return call_id, to, agent


def _connect_instruction(instruction: dict[str, Any]) -> tuple[str, str, int | None]:
    if instruction.get("type") != "call.connect":
        raise MalformedRequest("expected a call.connect object")
    call_id, agent = instruction.get("call_id"), instruction.get("agent")
    decision_id = instruction.get("decision_id")
    if not (isinstance(call_id, str) and call_id and isinstance(agent, str) and agent):
        raise MalformedRequest("call_id and agent are required")
    if not (decision_id is None or isinstance(decision_id, int)):
        raise MalformedRequest("decision_id is a number or null")
    return call_id, agent, decision_id


def _response_bytes(status: HTTPStatus, answer: dict[str, Any]) -> bytes:
    body = json.dumps(answer).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
