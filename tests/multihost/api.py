"""A client of the cluster through its balancer: every request on a new connection, every answer naming the host
that gave it, and the few calls the tests arrange tenants, keys and chat turns with."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict

HOST_HEADER = "X-Voyagent-Host"  # set by HAProxy: the host that answered
GATEWAY_ERRORS = (502, 503, 504)  # the balancer's own answers when a host or a worker is gone mid-request
PASSWORD = "Multihost-Passw0rd-Long"


@dataclasses.dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]  # case-insensitive: HAProxy writes its header in lower case
    body: bytes

    @property
    def host(self) -> str | None:
        return self.headers.get(HOST_HEADER)

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def from_balancer(self) -> bool:
        """An error HAProxy wrote itself (no host reached, or the host's connection broke): not JSON."""
        return self.status in GATEWAY_ERRORS and not self.body.startswith(b"{")

    @property
    def detail(self) -> Any:
        try:
            return self.json().get("detail")
        except (orjson.JSONDecodeError, AttributeError):
            return None


@dataclasses.dataclass
class Admin:
    """An agency_admin of a tenant of its own, signed up through the balancer."""

    token: str
    tenant_id: str
    email: str


@dataclasses.dataclass(frozen=True)
class Frame:
    """One SSE frame as sent: its id (None for a heartbeat), event name, ``data`` text and exact bytes."""

    id: int | None
    event: str
    data: str
    raw: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.data)


def parse_frames(buffer: bytes) -> tuple[list[Frame], bytes]:
    """The complete frames at the start of ``buffer`` and what is left of it."""
    frames = []
    while (end := buffer.find(b"\n\n")) != -1:
        block, buffer = buffer[:end], buffer[end + 2:]
        fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                      for line in block.decode().split("\n"))
        frames.append(Frame(int(fields["id"]) if "id" in fields else None, fields.get("event", ""),
                            fields.get("data", ""), block + b"\n\n"))
    return frames, buffer


class Api:
    """Requests to ``base_url`` with a bearer credential; connection failures answer status 0."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                             timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, credential: str | None = None, json: Any = None,
                      headers: dict[str, str] | None = None) -> Answer:
        headers = dict(headers or {})
        if credential is not None:
            headers["Authorization"] = f"Bearer {credential}"
        data = None if json is None else orjson.dumps(json)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(method, f"{self.base_url}{path}", data=data, headers=headers) as response:
                return Answer(response.status, CIMultiDict(response.headers), await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            return Answer(0, CIMultiDict(), repr(error).encode())

    async def sign_up(self) -> Admin:
        email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
        answer = await self.request("POST", "/auth/sign-up", json={
            "email": email, "password": PASSWORD, "full_name": "Multi Host", "agency_name": "Multi Host Travel"})
        assert answer.status == 201, (answer.status, answer.body)
        body = answer.json()
        return Admin(body["access_token"], body["user"]["tenant_id"], email)

    async def create_api_key(self, admin: Admin, scopes: list[str]) -> tuple[str, str]:
        """(plaintext key, key id)."""
        answer = await self.request("POST", "/auth/api-keys", admin.token, json={"name": "multihost", "scopes": scopes})
        assert answer.status == 201, (answer.status, answer.body)
        body = answer.json()
        return body["key"], body["api_key"]["id"]

    async def set_rate_limit(self, admin: Admin, per_minute: int) -> Answer:
        answer = await self.request("PATCH", "/tenant-settings", admin.token, json={"rate_limit_per_minute": per_minute})
        assert answer.status == 200 and answer.json()["rate_limit_per_minute"] == per_minute, answer
        return answer

    async def create_session(self, admin: Admin) -> str:
        answer = await self.request("POST", "/chat/sessions", admin.token, json={})
        assert answer.status == 201, (answer.status, answer.body)
        return answer.json()["session_id"]

    async def chat_is_routed(self, admin: Admin) -> bool:
        """Whether ``POST /chat/sessions/{id}/messages`` exists: an unknown session is then ``session_not_found``,
        while an unrouted path answers the framework's ``Not Found``."""
        answer = await self.request("POST", f"/chat/sessions/{uuid.uuid4()}/messages", admin.token, json={})
        return not (answer.status == 404 and answer.detail == "Not Found")

    async def stream(self, credential: str, session_id: str, message: str = "", last_event_id: int | None = None,
                     stop_after: int | None = None) -> tuple[Answer, list[Frame]]:
        """Send a message (or reconnect with ``Last-Event-ID``) and read the agent frames until the stream ends,
        or only ``stop_after`` of them (then the connection is dropped, as a client that goes away). A non-200
        answer comes back with no frames; a connection cut mid-stream keeps the frames read so far."""
        headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        frames: list[Frame] = []
        answer = Answer(0, CIMultiDict(), b"")
        try:
            async with self.session.post(f"{self.base_url}/chat/sessions/{session_id}/messages", headers=headers,
                                         data=orjson.dumps({"message": message})) as response:
                answer = Answer(response.status, CIMultiDict(response.headers), b"")
                if response.status != 200:
                    answer.body = await response.read()
                    return answer, frames
                buffer = b""
                async for chunk in response.content.iter_any():
                    parsed, buffer = parse_frames(buffer + chunk)
                    frames += [frame for frame in parsed if frame.id is not None]
                    if stop_after is not None and len(frames) >= stop_after:
                        return answer, frames[:stop_after]
        except (aiohttp.ClientError, TimeoutError) as error:
            answer.body = repr(error).encode()
        return answer, frames
