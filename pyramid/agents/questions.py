"""The example-questions agent of ``overview --model``: 5–10 questions a reader could ask the
collection, written from its themes and what its recollections say."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field
from pydantic_ai import Agent

from ..config import OutputMode
from ..models import Overview
from .base import CONCEPTS, RECOLLECTIONS, build_agent, frame, send_back
from .insights import STRICT

MIN_QUESTIONS = 5
MAX_QUESTIONS = 10


class ExampleQuestions(BaseModel):
    model_config = STRICT

    questions: list[str] = Field(description="5 to 10 questions, one sentence each, ending with '?'")


@dataclass(frozen=True)
class QuestionsDeps:
    shown: frozenset[str]  # the texts the prompt framed: a question must not be one of them


def check_questions(deps: QuestionsDeps, found: ExampleQuestions) -> ExampleQuestions:
    questions = list(dict.fromkeys(" ".join(q.split()) for q in found.questions if q.strip()))
    problems: list[str] = []
    if not MIN_QUESTIONS <= len(questions) <= MAX_QUESTIONS:
        problems.append(f"write {MIN_QUESTIONS} to {MAX_QUESTIONS} different questions, not {len(questions)}")
    asked = [q for q in questions if not q.endswith("?")]
    if asked:
        problems.append(f"each question ends with '?': {asked[:3]}")
    copied = [q for q in questions if q.rstrip("?").strip() in deps.shown]
    if copied:
        problems.append(f"write questions, not the themes themselves: {copied[:3]}")
    send_back(problems)
    return ExampleQuestions(questions=questions)


def build_questions_agent(mode: OutputMode = "tool") -> Agent[QuestionsDeps, ExampleQuestions]:
    return build_agent("overview_questions", ExampleQuestions, QuestionsDeps, check_questions, mode)


def questions_prompt(view: Overview) -> tuple[str, QuestionsDeps]:
    """The prompt (themes with the documents they span, some recollections, framed as data) and
    what the check needs."""
    themes = [
        f"{t.name} (in {t.documents} document{'s' if t.documents != 1 else ''}: {', '.join(t.titles[:4])})"
        for t in view.themes
    ]
    says = [r.text for r in view.says]
    prompt = "\n\n".join(
        [
            f"The collection: {len(view.documents)} documents, {view.pages} pages.",
            "Its main themes:",
            frame(CONCEPTS, "\n".join(f"- {t}" for t in themes) or "(none)"),
            "What its recollections say:",
            frame(RECOLLECTIONS, "\n".join(f"- {s}" for s in says) or "(none)"),
            f"Write {MIN_QUESTIONS} to {MAX_QUESTIONS} questions.",
        ]
    )
    return prompt, QuestionsDeps(frozenset(t.name for t in view.themes) | frozenset(says))
