"""The verify agent: does a learned recollection still follow from its sources as they read now?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_ai import Agent
from pydantic_ai.framing import register_tag

from ..config import OutputMode
from .base import build_agent, frame, send_back
from .insights import STRICT

RECOLLECTION = register_tag("learned_recollection")
SOURCES = register_tag("recollection_sources")


class Judgement(BaseModel):
    model_config = STRICT

    verdict: Literal["supported", "revise", "unsupported"]
    text: str = Field(description="the revised statement when the verdict is revise, else empty")


@dataclass(frozen=True)
class VerifyDeps:
    statement: str


def check_judgement(deps: VerifyDeps, judgement: Judgement) -> Judgement:
    problems = []
    if judgement.verdict == "revise" and not judgement.text.strip():
        problems.append("a revise verdict needs the revised statement in text")
    send_back(problems)
    return judgement


def build_verify_agent(mode: OutputMode = "tool") -> Agent[VerifyDeps, Judgement]:
    return build_agent("verify", Judgement, VerifyDeps, check_judgement, mode)


def verify_prompt(statement: str, sources: Sequence[tuple[str, str]]) -> str:
    """``sources``: (where, text) of each source as it reads now."""
    listing = "\n".join(f"{n}. {where}: {text}" for n, (where, text) in enumerate(sources, 1))
    return "\n\n".join(
        [frame(RECOLLECTION, statement), "Its sources now:", frame(SOURCES, listing or "(none)"), "Judge it."]
    )
