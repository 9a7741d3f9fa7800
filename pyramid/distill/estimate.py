"""What an LLM distillation will cost, before anything is spent (``pyramid ingest --dry-run``).

Tokens are counted as characters / 4 (the usual rule of thumb for English with BPE tokenizers) over
the real prompts' parts: the instructions, every window's pages, and the insights, concepts and
abstract that later steps read. Output sizes use ratios of insight text to page text seen in
practice (about a third). It is an estimate to decide whether to run, not an invoice; the real
usage is recorded per document and step and shown by ``pyramid stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..models import Usage
from .windows import plan_windows

if TYPE_CHECKING:
    from ..config import Settings

CHARS_PER_TOKEN = 4
INSIGHT_RATIO = 0.35  # insight tokens written per page token
CONCEPT_RATIO = 0.25  # concept tokens per insight token
FRAMING = 80  # tokens of headings, tags and schema around each call's inputs
SCHEMA = 150  # tokens of the output tool's JSON schema


def tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


@cache
def _instructions(name: str) -> int:
    return tokens(resources.files("pyramid.prompts").joinpath(f"{name}.md").read_text("utf-8"))


def estimate_tokens(pages: Sequence[str], settings: Settings, *, title: str = "") -> Usage:
    """Estimated usage of distilling one document with an LLM (recollection share included)."""
    page_tokens = [tokens(page) for page in pages]
    fixed_window = _instructions("insights") + SCHEMA + FRAMING + tokens(title)
    requests = input_tokens = output_tokens = 0
    seen: set[int] = set()
    for window in plan_windows(len(pages)):
        shown = sum(int(page_tokens[p - 1] * INSIGHT_RATIO) for p in window if p in seen)
        input_tokens += fixed_window + sum(page_tokens[p - 1] for p in window) + shown
        output_tokens += sum(int(page_tokens[p - 1] * INSIGHT_RATIO) for p in window if p not in seen) + 20
        requests += 1
        seen.update(window)
    insight_tokens = int(sum(page_tokens) * INSIGHT_RATIO)
    batches = max(1, -(-int(insight_tokens / 15) // settings.concept_batch))  # ~15 tokens an insight
    concept_tokens = int(insight_tokens * CONCEPT_RATIO)
    requests += batches + (1 if batches > 1 else 0) + 1
    input_tokens += batches * (_instructions("concepts") + SCHEMA + FRAMING) + insight_tokens
    output_tokens += concept_tokens
    if batches > 1:
        input_tokens += _instructions("merge_concepts") + SCHEMA + FRAMING + concept_tokens
        output_tokens += concept_tokens
    abstract_tokens = int(settings.abstract_words * 1.4)
    input_tokens += (
        _instructions("abstract")
        + SCHEMA
        + FRAMING
        + concept_tokens
        + min(insight_tokens, settings.abstract_insights * 15)
    )
    output_tokens += abstract_tokens
    # This document's share of a recollection call: its abstract and concepts, and as much again
    # of related concepts of other documents.
    share = 1 / settings.recollection_batch
    input_tokens += int(
        share * (_instructions("recollections") + SCHEMA) + 2 * (abstract_tokens + concept_tokens)
    )
    output_tokens += int(share * 200)
    requests += 1 if share >= 1 else 0
    return Usage(requests=requests, input_tokens=input_tokens, output_tokens=output_tokens)


# pydantic-ai model-string prefixes whose provider genai-prices names differently.
_PROVIDERS = {
    "openai-chat": "openai",
    "openai-responses": "openai",
    "google-gla": "google",
    "google-vertex": "google",
    "gateway/openai": "openai",
    "gateway/anthropic": "anthropic",
    "bedrock": "aws",
}


def price_of(model: str, usage: Usage) -> float | None:
    """The price in USD of ``usage`` with ``model`` ("provider:name"), or None when genai-prices
    does not know the model (a local server, a fine-tune, a new name)."""
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    provider, _, name = model.partition(":")
    if not name:
        provider, name = "", provider
    provider_id = _PROVIDERS.get(provider, provider) or None
    try:
        price = calc_price(
            PriceUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
            name,
            provider_id=provider_id,
        )
    except LookupError:
        return None
    return float(price.total_price)
