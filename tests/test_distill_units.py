"""Pure parts of the LLM distiller: the window plan, the insight book, output validation, retries,
estimates and prices."""

from __future__ import annotations

import pytest
from pydantic_ai import ModelRetry
from scripted import http_error

from pyramid.agents.base import CallPolicy, retryable
from pyramid.agents.concepts import MergedConcept, MergedConcepts, NumbersDeps, check_merge
from pyramid.agents.insights import InsightRevision, NewInsight, WindowDeps, WindowEdits, check_edits
from pyramid.config import load_settings
from pyramid.distill.estimate import estimate_tokens, price_of
from pyramid.distill.windows import InsightBook, plan_windows
from pyramid.models import Usage

pytestmark = pytest.mark.unit  # no PostgreSQL, no model: the fast layer


def test_windows_read_every_page_twice_in_order() -> None:
    assert plan_windows(0) == []
    assert plan_windows(1) == [(1,), (1,)]
    assert plan_windows(4) == [(1,), (1, 2), (2, 3), (3, 4), (4,)]
    for n in range(1, 30):
        reads = [p for window in plan_windows(n) for p in window]
        assert reads == sorted(reads) and all(reads.count(p) == 2 for p in range(1, n + 1))


def test_the_book_applies_deletions_revisions_additions() -> None:
    book = InsightBook()
    book.apply(
        1,
        WindowEdits(
            add=[NewInsight(text="A.", pages=[1]), NewInsight(text="B.", pages=[1])], revise=[], delete=[]
        ),
    )
    book.apply(
        2,
        WindowEdits(
            revise=[InsightRevision(number=1, text="A2.", pages=[1, 2])],
            delete=[2],
            add=[NewInsight(text="C.", pages=[2])],
        ),
    )
    assert [(e.number, e.key, e.text, e.pages) for e in book.alive()] == [
        (1, "1.1", "A2.", [1, 2]),
        (3, "2.1", "C.", [2]),
    ]
    assert [e.number for e in book.for_pages([2])] == [1, 3]
    assert book.for_pages([3]) == []


def test_invalid_window_answers_are_sent_back_with_every_problem() -> None:
    deps = WindowDeps(pages=(2, 3), shown=frozenset({4, 5}))
    good = WindowEdits(
        add=[NewInsight(text="X is Y.", pages=[3])],
        revise=[InsightRevision(number=4, text="Z.", pages=[2])],
        delete=[],
    )
    assert check_edits(deps, good) is good
    bad = WindowEdits(
        add=[NewInsight(text="Outside.", pages=[1]), NewInsight(text="", pages=[])],
        revise=[],
        delete=[9, 5, 5],
    )
    with pytest.raises(ModelRetry) as info:
        check_edits(deps, bad)
    message = str(info.value)
    assert "insight 9 is not one of the insights shown" in message
    assert "insight 5 is revised or deleted more than once" in message
    assert "page(s) [1], outside this window (2, 3)" in message
    assert "names no page" in message


def test_a_merge_must_place_every_concept_once() -> None:
    deps = NumbersDeps(frozenset({1, 2, 3}))
    with pytest.raises(ModelRetry, match=r"concept\(s\) \[3\] are in no group"):
        check_merge(deps, MergedConcepts(concepts=[MergedConcept(name="a", description="d", merges=[1, 2])]))
    ok = MergedConcepts(
        concepts=[
            MergedConcept(name="a", description="d", merges=[1, 2]),
            MergedConcept(name="b", description="d", merges=[3]),
        ]
    )
    assert check_merge(deps, ok) is ok


def test_which_failures_are_retried() -> None:
    from pydantic_ai.exceptions import UnexpectedModelBehavior

    assert retryable(http_error(429)) and retryable(http_error(503)) and retryable(TimeoutError())
    assert retryable(UnexpectedModelBehavior("Exceeded maximum output retries (2)"))
    assert not retryable(http_error(401)) and not retryable(http_error(400))
    policy = CallPolicy(retries=3, backoff=1.0, timeout=10, output_retries=2)
    assert 0.5 <= policy.wait(0, http_error(503)) <= 1.0 and 2.0 <= policy.wait(2, http_error(503)) <= 4.0
    asked = http_error(429)
    asked.retry_after = 7.0
    assert policy.wait(0, asked) == 7.0


def test_estimates_grow_with_the_document_and_known_models_have_a_price() -> None:
    settings = load_settings()
    small = estimate_tokens(["word " * 200], settings)
    large = estimate_tokens(["word " * 200] * 10, settings)
    assert small.requests == 2 + 2 and large.requests == 11 + 2  # windows + concepts + abstract
    assert large.input_tokens > 4 * small.input_tokens  # fixed costs (instructions) are shared
    usage = Usage(requests=1, input_tokens=1_000_000, output_tokens=0)
    assert price_of("openai:gpt-4.1-mini", usage) == pytest.approx(0.4)
    assert price_of("ollama:llama3.2", usage) is None
