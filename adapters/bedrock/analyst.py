"""The Analyst port on Amazon Bedrock: Claude through the Converse API.

The answer is forced into the prompt version's JSON schema through tool use (``toolChoice`` on
the single tool) and validated against the input before it is believed. ``maxTokens`` is always
set and ``stopReason`` checked: a truncated answer is not an answer. Throttling and the
service's transient failures are retried with full-jitter exponential backoff, each attempt
under a semaphore that caps concurrent calls; the whole call, retries included, has a deadline.
Token usage becomes a cost by the configured price of the model. botocore's own retries are off
so that these rules, not its defaults, decide.
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from adapters.bedrock.config import BedrockSettings, ModelPrice
from adapters.bedrock.prompts import Prompt
from domain.analysis import (
    AnalysisInput,
    AnalystAnswer,
    AnalystError,
    AnswerFormatError,
    ModelUsage,
    cost_usd,
    parse_body,
)
from domain.ports import Analyst

log = logging.getLogger("omnix.analyst.bedrock")

TOOL_NAME = "record_customer_analysis"
THROTTLING = frozenset({"ThrottlingException", "TooManyRequestsException"})
TRANSIENT = frozenset(
    {
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
BASE_DELAY = 0.25
MAX_DELAY = 8.0


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class _Retry(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class BedrockAnalyst(Analyst):
    """Analyses through ``bedrock-runtime`` Converse. ``open`` builds the client and ``close``
    releases it; ``attempts`` counts every request made, for operators and tests."""

    def __init__(
        self,
        settings: BedrockSettings,
        prompt: Prompt,
        price: ModelPrice,
        *,
        session: aioboto3.Session | None = None,
        base_delay: float = BASE_DELAY,
    ) -> None:
        self._settings = settings
        self._prompt = prompt
        self._price = price
        self._session = session
        self._base_delay = base_delay
        self._gate = asyncio.Semaphore(settings.concurrency)
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self.attempts = 0
        self.retries = 0

    @property
    def model(self) -> str:
        return self._settings.model_id

    @property
    def prompt_version(self) -> str:
        return self._prompt.version

    async def open(self) -> None:
        session = self._session or aioboto3.Session()
        config = AioConfig(
            connect_timeout=min(5.0, self._settings.timeout),
            read_timeout=self._settings.timeout,
            retries={"total_max_attempts": 1},
            max_pool_connections=self._settings.concurrency,
        )
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            session.client("bedrock-runtime", region_name=self._settings.region, config=config)
        )
        self._stack = stack

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    def request(self, given: AnalysisInput) -> dict[str, Any]:
        """The Converse request for ``given``: the only text that leaves the process."""
        return {
            "modelId": self._settings.model_id,
            "system": [{"text": self._prompt.system}],
            "messages": [
                {"role": "user", "content": [{"text": self._prompt.user(given.to_json())}]}
            ],
            "inferenceConfig": {"maxTokens": self._settings.max_tokens, "temperature": 0.0},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": TOOL_NAME,
                            "description": "Record the structured analysis of the customer.",
                            "inputSchema": {"json": self._prompt.schema},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": TOOL_NAME}},
            },
        }

    async def analyse(self, given: AnalysisInput) -> AnalystAnswer:
        if self._client is None:
            raise AnalystError("UNAVAILABLE", "the Bedrock client is not open")
        request = self.request(given)
        try:
            async with asyncio.timeout(self._settings.timeout):
                response = await self._call_with_retries(request)
        except TimeoutError as e:
            raise AnalystError("TIMEOUT", f"no answer within {self._settings.timeout:g} s") from e
        return self._answer(response, given)

    async def _call_with_retries(self, request: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._gate:
                    self.attempts += 1
                    return await self._call(request)
            except _Retry as e:
                if attempt >= self._settings.attempts:
                    raise AnalystError(
                        e.reason, f"gave up after {attempt} attempts: {e.detail}"
                    ) from e
                delay = random.uniform(0, min(MAX_DELAY, self._base_delay * 2 ** (attempt - 1)))
                self.retries += 1
                log.info("Bedrock %s (%s); retry %d in %.2f s", e.reason, e.detail, attempt, delay)
                await asyncio.sleep(delay)

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = await self._client.converse(**request)
            return response
        except ClientError as e:
            code = _code(e)
            if code in THROTTLING:
                raise _Retry("THROTTLED", code) from e
            if code in TRANSIENT or _status(e) >= 500:
                raise _Retry("UNAVAILABLE", code) from e
            raise AnalystError("UNAVAILABLE", f"Bedrock refused the call: {code}") from e
        except (ReadTimeoutError, ConnectTimeoutError) as e:
            raise _Retry("TIMEOUT", type(e).__name__) from e
        except (EndpointConnectionError, OSError) as e:
            raise _Retry("UNAVAILABLE", type(e).__name__) from e
        except BotoCoreError as e:
            raise AnalystError("UNAVAILABLE", f"Bedrock call failed: {type(e).__name__}") from e

    def _usage(self, response: dict[str, Any]) -> ModelUsage:
        usage = response.get("usage") or {}
        tokens_in, tokens_out = usage.get("inputTokens"), usage.get("outputTokens")
        if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
            return ModelUsage()
        return ModelUsage(
            tokens_in,
            tokens_out,
            cost_usd(
                tokens_in, tokens_out, self._price.input_per_mtok, self._price.output_per_mtok
            ),
        )

    def _answer(self, response: dict[str, Any], given: AnalysisInput) -> AnalystAnswer:
        usage = self._usage(response)
        stop = response.get("stopReason")
        if stop == "max_tokens":
            raise AnalystError(
                "TRUNCATED",
                f"the answer hit maxTokens ({self._settings.max_tokens})",
                usage=usage,
            )
        content = (response.get("output") or {}).get("message", {}).get("content") or []
        tool_uses = [
            block["toolUse"]
            for block in content
            if isinstance(block, dict) and isinstance(block.get("toolUse"), dict)
        ]
        if stop not in {"tool_use", "end_turn"} or len(tool_uses) != 1:
            raise AnalystError(
                "INVALID_OUTPUT",
                f"expected one {TOOL_NAME} call, got stopReason {stop!r} and "
                f"{len(tool_uses)} tool calls",
                usage=usage,
            )
        tool = tool_uses[0]
        if tool.get("name") != TOOL_NAME:
            raise AnalystError(
                "INVALID_OUTPUT", f"the model called {tool.get('name')!r}", usage=usage
            )
        try:
            body = parse_body(tool.get("input"), given)
        except AnswerFormatError as e:
            raise AnalystError("INVALID_OUTPUT", str(e), usage=usage) from e
        return AnalystAnswer(body, self.model, self.prompt_version, usage)
