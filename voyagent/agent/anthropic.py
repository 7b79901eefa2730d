"""The Anthropic backend (chat-and-agent.md §10.2): the Messages API streamed over the server's own aiohttp
session, the tool loop through the gateway, the §10.2 retries, and the turn's token usage and daily budget.

The wire format is ``voyagent.agent.messages_api``'s, the history's translation ``voyagent.agent.conversation``'s;
this module owns the loop. Sleeps and the clock are injectable, so tests observe the waits without spending them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

import aiohttp

from voyagent import jsonio
from voyagent.agent.conversation import tool_result_content, to_messages
from voyagent.agent.events import event
from voyagent.agent.interface import Tools, Turn
from voyagent.agent.messages_api import (API_VERSION, CONNECTION_ERROR, INVALID_RESPONSE, MAX_ERROR_BODY,
                                         ProviderError, SseDecoder, StreamedMessage, http_error)
from voyagent.services import usage as usage_service

log = logging.getLogger(__name__)

MAX_ROUNDS = 8  # model ↔ tool rounds per turn (§10.2)
MAX_ATTEMPTS = 3  # per model request, for rate limits and overload
TRANSIENT_BACKOFF = (1.0, 2.0)  # seconds before the 2nd and 3rd attempt when the provider names no wait
CONNECTION_RETRY_DELAY = 1.0
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is waited this long: the turn timeout bounds the turn anyway
CONNECT_TIMEOUT = 10.0
STREAM_IDLE_TIMEOUT = 60.0  # the provider pings a live stream well within this

SYSTEM_PROMPT = (
    "You are Voyagent, the travel assistant of a travel agency. You help the agency's staff plan trips for "
    "their customers: search flights and hotels, build the session's itinerary, add passengers, hold and book "
    "offers and issue invoices, always through the tools you are given. Never invent offers, prices, "
    "references or availability: quote only what the tools returned, with offer ids exactly as returned. "
    "Holding, booking and invoicing pause for a human decision; when a call is paused, say so and stop. "
    "Ask for what is missing (dates as YYYY-MM-DD, airport codes, number of travellers) instead of guessing. "
    "Keep answers short and factual."
)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def system_prompt(turn: Turn) -> str:
    """The product prompt, the tenant's locale and currency, then its ``system_prompt_suffix`` when set."""
    settings = turn.settings
    prompt = (f"{SYSTEM_PROMPT}\nThe agency's locale is {settings.locale}; its reporting currency is "
              f"{settings.default_currency}.")
    if settings.system_prompt_suffix and settings.system_prompt_suffix.strip():
        prompt += "\n\n" + settings.system_prompt_suffix
    return prompt


def tool_definitions(specs: Sequence[Any]) -> list[dict[str, Any]]:
    """Every ToolSpec as the API's tool definition: name, description and JSON Schema."""
    return [{"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}
            for spec in specs]


class RetryPolicy:
    """§10.2 for one model request: rate limited or overloaded → the provider's ``Retry-After``, else 1 s then
    2 s (3 attempts in all); a connection error → one retry after 1 s; anything else is final."""

    def __init__(self) -> None:
        self.attempts = 1
        self.connection_retried = False

    def delay(self, error: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None when ``error`` is final."""
        if self.attempts >= MAX_ATTEMPTS:
            return None
        if error.transient:
            wait = error.retry_after if error.retry_after is not None else TRANSIENT_BACKOFF[self.attempts - 1]
            wait = min(wait, MAX_RETRY_AFTER)
        elif error.connection and not self.connection_retried:
            self.connection_retried = True
            wait = CONNECTION_RETRY_DELAY
        else:
            return None
        self.attempts += 1
        return wait


class TextLedger:
    """The text of one model request already sent to the client, so that a retry never sends it again: a
    retry's text is swallowed while it repeats what was sent and emitted from where it goes further. A retry
    that words it differently continues after a paragraph break (sent text cannot be taken back)."""

    def __init__(self) -> None:
        self.sent = ""
        self._position = 0  # how much of ``sent`` the current attempt has repeated
        self._diverged = False

    def restart(self) -> None:
        """A new attempt starts from the beginning of the reply."""
        self._position = 0
        self._diverged = False

    def accept(self, text: str) -> str:
        """The part of ``text`` to send now (maybe empty)."""
        if not self._diverged:
            expected = self.sent[self._position:self._position + len(text)]
            common = 0
            for ours, theirs in zip(text, expected):
                if ours != theirs:
                    break
                common += 1
            self._position += common
            if common == len(text):
                return ""
            text = text[common:]
            if common < len(expected):  # a different wording, not a continuation
                self._diverged = True
                text = "\n\n" + text
        self.sent += text
        self._position = len(self.sent)
        return text


class AnthropicBackend:
    """``VOYAGENT_AGENT_BACKEND=anthropic``: not ready without an API key (new turns answer 503)."""

    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str, default_model: str, max_tokens: int,
                 http: aiohttp.ClientSession, database: Any, sql: Any, sleep: Sleep = asyncio.sleep,
                 clock: Clock = utc_now) -> None:
        self.api_key = api_key
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.default_model = default_model
        self.max_tokens = max_tokens
        self.http = http
        self.database = database
        self.sql = sql
        self.sleep = sleep
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=STREAM_IDLE_TIMEOUT)

    @property
    def ready(self) -> bool:
        return bool(self.api_key)

    def model_for(self, turn: Turn) -> str:
        """The tenant's model, else ``VOYAGENT_AGENT_MODEL``."""
        return turn.settings.model or self.default_model

    async def refuse_turn(self, turn: Turn) -> str | None:
        """§2 step 4: ``daily_budget_exceeded: limit=… used=…`` once today's tokens reach the tenant's budget."""
        async with self.database.connection() as conn:
            budget = await usage_service.daily_budget(conn, self.sql, tenant_id=turn.tenant_id, now=self.clock())
        return budget.refusal() if budget.exceeded else None

    async def run_turn(self, turn: Turn, tools: Tools) -> AsyncIterator[dict[str, Any]]:
        """The tool loop: stream a reply, run its tool calls, send their results back, until the model stops
        asking for tools, a call pauses for approval, or 8 rounds have run."""
        if not turn.message.strip():
            return  # nothing to answer (§2 step 7: only a non-blank message is a command)
        model = self.model_for(turn)
        used = usage_service.TokenUsage()
        body: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens, "system": system_prompt(turn),
                                "messages": to_messages(turn.history, turn.message, turn.resumed), "stream": True}
        definitions = tool_definitions(tools.specs())
        if definitions:
            body["tools"] = definitions
        try:
            for _ in range(MAX_ROUNDS):
                reply = StreamedMessage()
                try:
                    async with contextlib.aclosing(self._request(body, used)) as stream:
                        async for item in stream:
                            if isinstance(item, str):
                                yield event("text_delta", turn.session_id, turn.turn_id, text=item)
                            else:
                                reply = item
                except ProviderError as exc:
                    log.warning("anthropic request failed for turn %s: %s", turn.turn_id, exc)
                    yield event("error", turn.session_id, turn.turn_id,
                                error_message=f"upstream_error: {exc.error_class}")
                    return
                calls = reply.tool_calls()
                if reply.stop_reason != "tool_use" or not calls:
                    return
                results: list[dict[str, Any]] = []
                for call in calls:
                    outcome = await tools.invoke(call.name, call.tool_input)
                    if outcome.kind == "approval_needed":
                        return  # the call waits for a human: no further tool call in this turn (§10.1)
                    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id,
                                              "content": tool_result_content(outcome.output)}
                    if outcome.kind != "success":
                        result["is_error"] = True
                    results.append(result)
                body["messages"] = [*body["messages"], {"role": "assistant", "content": reply.content()},
                                    {"role": "user", "content": results}]
        finally:
            await self._record_usage(turn, model, used)

    async def _request(self, body: dict[str, Any],
                       used: usage_service.TokenUsage) -> AsyncIterator[str | StreamedMessage]:
        """One model request with the §10.2 retries: yields each piece of text once, whatever the attempts,
        then the successful attempt's message."""
        payload = jsonio.dumps(body)
        retries = RetryPolicy()
        ledger = TextLedger()
        while True:
            attempt = StreamedMessage()
            ledger.restart()
            try:
                async with contextlib.aclosing(self._attempt(payload, attempt)) as texts:
                    async for text in texts:
                        fresh = ledger.accept(text)
                        if fresh:
                            yield fresh
            except ProviderError as exc:
                wait = retries.delay(exc)
                if wait is None:
                    raise
                log.info("anthropic attempt %d failed (%s); retrying in %.1f s", retries.attempts - 1, exc, wait)
                await self.sleep(wait)
                continue
            finally:  # what the provider reported counts, also for an attempt that failed afterwards
                used.add(attempt.input_tokens, attempt.output_tokens)
            yield attempt
            return

    async def _attempt(self, payload: bytes, reply: StreamedMessage) -> AsyncIterator[str]:
        """One HTTP request: its stream's text as it arrives; any failure is a :class:`ProviderError`."""
        headers = {"x-api-key": self.api_key or "", "anthropic-version": API_VERSION,
                   "content-type": "application/json", "accept": "text/event-stream"}
        try:
            async with self.http.post(self.url, data=payload, headers=headers, timeout=self.timeout) as response:
                if response.status != 200:
                    raise http_error(response.status, await _read_limited(response.content, MAX_ERROR_BODY),
                                     response.headers, self.clock())
                if response.content_type != "text/event-stream":
                    raise ProviderError(INVALID_RESPONSE, status=200, message=f"content type {response.content_type}")
                decoder = SseDecoder()
                async for chunk in response.content.iter_any():
                    for server_event in decoder.feed(chunk):
                        text = reply.apply(server_event)
                        if text:
                            yield text
                    if reply.complete:
                        return
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(CONNECTION_ERROR, message=f"{type(exc).__name__}: {exc}") from exc
        raise ProviderError(CONNECTION_ERROR, message="the stream ended before message_stop")

    async def _record_usage(self, turn: Turn, model: str, used: usage_service.TokenUsage) -> None:
        """The turn's ``session_costs`` row (none when the provider reported no tokens); a failure to write it
        is logged, never the turn's failure."""
        if not used.total_tokens:
            return
        try:
            async with self.database.transaction() as conn:
                await usage_service.record_turn_usage(conn, self.sql, tenant_id=turn.tenant_id,
                                                      session_id=turn.session_id, turn_id=turn.turn_id, model=model,
                                                      usage=used, now=self.clock())
        except Exception:
            log.exception("could not record the token usage of turn %s (%s: %d in, %d out)", turn.turn_id, model,
                          used.input_tokens, used.output_tokens)


async def _read_limited(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body (an error answer is small; a huge one is cut, not buffered)."""
    body = bytearray()
    while len(body) < limit:
        chunk = await content.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def create_anthropic_backend(settings: Any, *, http: aiohttp.ClientSession, database: Any,
                             sql: Any) -> AnthropicBackend:
    """The backend from ``Settings`` (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, VOYAGENT_AGENT_MODEL,
    VOYAGENT_AGENT_MAX_TOKENS), the server's HTTP session, its database and named queries."""
    return AnthropicBackend(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url,
                            default_model=settings.agent_model, max_tokens=settings.agent_max_tokens, http=http,
                            database=database, sql=sql)
