"""What every agent shares: prompts read from ``pyramid/prompts``, the frame that marks document text
as data, model resolution, and the one place that retries a failed model call.

Importing this module imports pydantic_ai: only the LLM distiller and the search agent do.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic_ai.framing import register_tag, wrap

from ..errors import ConfigError, ModelError
from ..models import Usage

if TYPE_CHECKING:
    from pydantic_ai import Agent
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

    from ..config import OutputMode, Settings

T = TypeVar("T")

# Data frames: what a document (or the corpus) says goes inside these tags, escaped so that nothing
# in it can close the frame or speak as the application. The prompts say that framed text is data.
PAGE = register_tag("document_page")
INSIGHTS = register_tag("insights")
CONCEPTS = register_tag("concepts")
DOCUMENT = register_tag("document")
RECOLLECTIONS = register_tag("recollections")
EVIDENCE = register_tag("evidence")

# HTTP statuses worth another try: timeouts, conflicts, rate limits, server trouble.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
MAX_WAIT = 120.0


DepsT = TypeVar("DepsT")
OutT = TypeVar("OutT")


def build_agent(
    name: str,
    output_type: type[OutT],
    deps_type: type[DepsT],
    check: Callable[[DepsT, OutT], OutT],
    mode: OutputMode = "tool",
) -> Agent[DepsT, OutT]:
    """An agent with the instructions ``prompts/<name>.md`` whose every output passes ``check``
    (which raises ModelRetry, sending the problems back to the model) before anyone sees it.
    ``mode`` says how the structured output is asked for (see ``wrap_output``)."""
    from pydantic_ai import Agent, RunContext

    agent: Agent[DepsT, OutT] = Agent(
        output_type=wrap_output(output_type, mode),
        deps_type=deps_type,
        instructions=prompt(name),
        name=name,
    )

    # async on purpose: PydanticAI runs a sync validator on a worker thread, and that hop (there
    # and back through the event loop) cost every call ~0.1 s of latency with 32 calls in flight.
    @agent.output_validator
    async def _validate(ctx: RunContext[DepsT], output: OutT) -> OutT:
        return check(ctx.deps, output)

    return agent


def wrap_output(output_type: type[OutT], mode: OutputMode) -> Any:
    """``output_type`` as PydanticAI asks for it in ``mode``: a tool call (``ToolOutput``), the
    provider's JSON-schema response format (``NativeOutput``: grammar-constrained on llama.cpp and
    vLLM), or the schema in the prompt (``PromptedOutput``: any chat model)."""
    from pydantic_ai import NativeOutput, PromptedOutput, ToolOutput

    if mode == "native":
        return NativeOutput(output_type)
    if mode == "prompted":
        return PromptedOutput(output_type)
    return ToolOutput(output_type)


def plain_output_type(spec: Any) -> Any:
    """The Pydantic model inside a ToolOutput/NativeOutput/PromptedOutput (or ``spec`` itself)."""
    inner = getattr(spec, "outputs", None) or getattr(spec, "output", None)
    return inner if inner is not None else spec


# The next mode to try when a model rejects the request shape (HTTP 400 about tools, the schema or
# response_format): tools → JSON schema → schema in the prompt, which any chat model accepts.
NEXT_MODE: dict[str, OutputMode] = {"tool": "native", "native": "prompted"}


def auto_mode(model: Model) -> OutputMode:
    """What ``auto`` starts with: the JSON-schema response format for OpenAI-compatible Chat
    Completions servers that declare it (llama.cpp, vLLM, LM Studio and Ollama turn it into a
    grammar, so even a small model returns parseable output), tools elsewhere."""
    profile: Any = getattr(model, "profile", None) or {}
    if isinstance(profile, dict):
        native = bool(profile.get("supports_json_schema_output"))
    else:
        native = bool(getattr(profile, "supports_json_schema_output", False))
    if type(model).__name__ == "OpenAIChatModel" and native:
        return "native"
    return "tool"


class OutputModes:
    """The output mode of one run, shared by all its calls. With ``auto`` the first rejection of
    the request shape moves every later call to the next mode, once, and says so (``say``)."""

    def __init__(self, requested: OutputMode, model: Model, say: Callable[[str], None]) -> None:
        self.auto = requested == "auto"
        self.current: OutputMode = auto_mode(model) if self.auto else requested
        self.say = say
        self.switched = False

    def fall_back(self, failed: OutputMode, exc: BaseException) -> bool:
        """True when ``exc`` (raised in mode ``failed``) is a rejected request shape and another
        mode is to be tried; False when the failure is to be handled as usual."""
        if not self.auto or not rejected_shape(exc):
            return False
        if self.current != failed:  # another call already moved on: just try again in its mode
            return True
        following = NEXT_MODE.get(failed)
        if following is None or self.switched:
            return False
        self.current, self.switched = following, True
        self.say(
            f"The model rejected {failed} output ({_describe(exc)}); using {following} output from now on."
        )
        return True


def rejected_shape(exc: BaseException) -> bool:
    """An HTTP 400/422 that is about the request's shape, not its credentials, model or length."""
    from pydantic_ai.exceptions import (
        ModelAuthenticationError,
        ModelContextWindowExceededError,
        ModelHTTPError,
        ModelNotFoundError,
        ModelRequestRejectedError,
    )

    if isinstance(exc, (ModelAuthenticationError, ModelNotFoundError, ModelContextWindowExceededError)):
        return False
    if isinstance(exc, ModelRequestRejectedError):
        return True
    return isinstance(exc, ModelHTTPError) and exc.status_code in (400, 422)


def send_back(problems: list[str]) -> None:
    """Raise ModelRetry listing every problem, so that one retry can fix them all."""
    from pydantic_ai import ModelRetry

    if problems:
        raise ModelRetry("Fix these problems and answer again:\n- " + "\n- ".join(problems))


@cache
def prompt(name: str) -> str:
    """The instructions of an agent, ``pyramid/prompts/<name>.md``."""
    return resources.files("pyramid.prompts").joinpath(f"{name}.md").read_text("utf-8").strip()


def frame(tag: Any, text: str, **attrs: str | None) -> str:
    return wrap(tag, text, **attrs)


def resolve_model(spec: str | Model) -> Model:
    """A PydanticAI model from a model string ("openai:gpt-4.1-mini", "anthropic:…", "ollama:…") or
    a ``Model`` instance (returned as it is)."""
    from pydantic_ai.exceptions import UserError
    from pydantic_ai.models import Model, infer_model

    if isinstance(spec, Model):
        return spec
    try:
        return infer_model(spec)
    except (UserError, ValueError, ImportError) as exc:
        raise ConfigError(f"cannot use the model {spec!r}: {exc}") from None


def model_label(spec: str | Model) -> str:
    """How a model is recorded (documents.distiller, items.distiller, the usage ledger)."""
    if isinstance(spec, str):
        return spec.strip()
    return f"{spec.system}:{spec.model_name}"


@dataclass(frozen=True)
class CallPolicy:
    """How one model call is made: timeout, transport retries with exponential backoff (honouring
    Retry-After), and how often an invalid output is sent back to the model to fix."""

    retries: int
    backoff: float
    timeout: float
    output_retries: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CallPolicy:
        return cls(
            settings.retries, settings.retry_backoff, settings.request_timeout, settings.output_retries
        )

    def wait(self, attempt: int, exc: BaseException) -> float:
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, (int, float)) and asked > 0:
            return min(float(asked), MAX_WAIT)
        # Full jitter: concurrent documents that failed together do not retry together.
        return min(MAX_WAIT, self.backoff * 2**attempt) * (0.5 + random.random() / 2)


def retryable(exc: BaseException) -> bool:
    """A failure that another attempt may cure: timeouts, rate limits, server errors, a dropped
    connection, or output that stayed invalid after being sent back (the model may do better on a
    fresh attempt). Bad credentials, an unknown model, an exhausted quota or a prompt over the
    context window are not."""
    from pydantic_ai.exceptions import (
        ContentFilterError,
        ModelConnectionError,
        ModelHTTPError,
        ModelRateLimitError,
        ModelRequestTimeout,
        ModelServerError,
        ModelUnavailableError,
        UnexpectedModelBehavior,
    )

    if isinstance(
        exc,
        (
            ModelRateLimitError,
            ModelUnavailableError,
            ModelServerError,
            ModelConnectionError,
            ModelRequestTimeout,
            TimeoutError,
        ),
    ):
        return True
    if isinstance(exc, ModelHTTPError):
        return exc.status_code in RETRY_STATUS
    return isinstance(exc, UnexpectedModelBehavior) and not isinstance(exc, ContentFilterError)


def _usage(run_usage: Any) -> Usage:
    return Usage(
        requests=int(run_usage.requests or 0),
        input_tokens=int(run_usage.input_tokens or 0),
        output_tokens=int(run_usage.output_tokens or 0),
    )


def timed_out(exc: BaseException) -> bool:
    from pydantic_ai.exceptions import ModelRequestTimeout, ModelTimeoutError

    return isinstance(exc, (ModelRequestTimeout, ModelTimeoutError, TimeoutError))


# A timed-out request is retried with a longer deadline (x2 each time, up to x8): a local model on a
# CPU is slow, not broken, and five tries with the same deadline only time out five times.
TIMEOUT_GROWTH = 2.0
MAX_TIMEOUT_FACTOR = 8.0


async def run_agent(
    agent: Agent[DepsT, T] | Callable[[OutputMode], Agent[DepsT, T]],
    user_prompt: str,
    *,
    deps: DepsT,
    model: Model,
    policy: CallPolicy,
    spent: Callable[[Usage], None],
    what: str,
    max_tokens: int | None = None,
    modes: OutputModes | None = None,
) -> T:
    """Run the agent once, retrying with backoff what ``retryable`` allows; every attempt's tokens
    are handed to ``spent`` (a failed attempt is billed too). Raises ModelError naming ``what``.

    ``agent`` may be a function of the output mode, with ``modes`` the run's mode (whose ``auto``
    falls back to another mode when the model rejects the request shape); ``max_tokens`` caps the
    output of every request."""
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import AgentRunError
    from pydantic_ai.usage import RunUsage

    attempt = 0
    timeout = policy.timeout
    while True:
        mode: OutputMode = modes.current if modes is not None else "tool"
        current = agent if isinstance(agent, Agent) else agent(mode)
        usage = RunUsage()
        # Retrying is ours (with backoff and Retry-After), not also the provider SDK's.
        settings: ModelSettings = {"request_timeout": timeout, "max_retries": 0}
        if max_tokens is not None:
            settings["max_tokens"] = max_tokens
        try:
            result = await current.run(
                user_prompt,
                deps=deps,
                model=model,
                usage=usage,
                retries={"output": policy.output_retries},
                model_settings=settings,
            )
        except (AgentRunError, TimeoutError) as exc:  # model trouble; a bug in our code propagates as is
            spent(_usage(usage))
            if modes is not None and modes.fall_back(mode, exc):
                continue
            if not retryable(exc) or attempt >= policy.retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise ModelError(f"{what} failed{tries}: {_describe(exc)}") from exc
            if timed_out(exc):
                timeout = min(timeout * TIMEOUT_GROWTH, policy.timeout * MAX_TIMEOUT_FACTOR)
            await asyncio.sleep(policy.wait(attempt, exc))
            attempt += 1
            continue
        spent(_usage(usage))
        return result.output


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
