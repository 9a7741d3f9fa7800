"""``pyramid serve``: the HTTP API through FastAPI's TestClient over the real embedded PostgreSQL and
the really ingested example corpus; auth, errors, uploads, and a streamed ask whose events arrive in
order from a scripted streaming model."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ask_helpers import RECOLLECTION, ingest_examples, tool_returns
from fastapi.testclient import TestClient
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from pyramid.serve import check_bind, create_app
from pyramid.serve.auth import COOKIE

QUESTION = "When does the Holm Orchards pilot start?"
TOKEN = "s3cret-token"


def _script(messages: list[ModelMessage], info: AgentInfo) -> tuple[str, dict[str, Any]] | list[str]:
    """The research searches for the pilot, notes the first hit, says done; the answer cites the first
    evidence item, in a few pieces. A tool call is (name, args); text is its pieces."""
    if "search" in {t.name for t in info.function_tools}:  # the research agent
        if not tool_returns(messages, "search"):
            return ("search", {"query": "Holm Orchards pilot start"})
        if not tool_returns(messages, "note"):
            first = tool_returns(messages, "search")[-1].content[0]
            return ("note", {"text": "The pilot start is in the evidence.", "item_ids": [first["id"]]})
        return ["done"]
    item = tool_returns(messages, "evidence")[-1].content["items"][0]
    return ["The pilot ", "starts as ", "the pyramid ", "says ", f"{item['cite']}."]


def streaming_model(delay: float = 0.0) -> FunctionModel:
    """The script as a model that streams (``delay`` seconds before each piece of the answer), and
    answers whole when not streamed."""

    def whole(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        step = _script(messages, info)
        if isinstance(step, tuple):
            return ModelResponse(parts=[ToolCallPart(step[0], step[1])])
        return ModelResponse(parts=[TextPart("".join(step))])

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
        step = _script(messages, info)
        if isinstance(step, tuple):
            yield {
                0: DeltaToolCall(name=step[0], json_args=json.dumps(step[1]), tool_call_id=f"call-{step[0]}")
            }
            return
        for piece in step:
            if delay:
                await asyncio.sleep(delay)
            yield piece

    return FunctionModel(whole, stream_function=stream)


@pytest.fixture(scope="module")
def ids(kp: Any) -> dict[str, int]:
    return ingest_examples(kp)


@pytest.fixture(scope="module")
def client(kp: Any, ids: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    app = create_app(
        kp, model=streaming_model(), max_upload=64 * 1024, upload_dir=tmp_path_factory.mktemp("uploads")
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def guarded(kp: Any, ids: Any) -> Any:
    with TestClient(create_app(kp, token=TOKEN)) as c:
        yield c


def doc_id(client: Any, name: str) -> int:
    return next(d["id"] for d in client.get("/api/documents").json() if d["source"].endswith(name))


# --- reading -----------------------------------------------------------------------------------------


def test_documents_lists_every_stored_document_with_counts(client: Any) -> None:
    docs = client.get("/api/documents").json()
    assert len(docs) == 11
    handbook = next(d for d in docs if d["source"].endswith("/handbook.md"))
    assert handbook["items"]["page"] >= 1 and handbook["items"]["insight"] >= 1


def test_a_document_comes_top_down_with_its_pages(client: Any) -> None:
    view = client.get(f"/api/documents/{doc_id(client, '/handbook.md')}").json()
    assert view["document"]["source"].endswith("/handbook.md")
    assert view["abstract"] and view["concepts"] and view["insights"] and view["pages"]
    assert [p["ordinal"] for p in view["pages"]] == list(range(1, len(view["pages"]) + 1))
    by_name = client.get("/api/documents/handbook.md?pages=false").json()
    assert by_name["document"]["id"] == view["document"]["id"] and by_name["pages"] == []


def test_an_item_shows_its_provenance_both_ways(client: Any, ids: dict[str, int]) -> None:
    view = client.get(f"/api/documents/{doc_id(client, '/handbook.md')}").json()
    concept = view["concepts"][0]
    up = client.get(f"/api/items/{concept['id']}").json()
    assert up["item"]["level"] == "concept"
    assert {i["id"] for i in up["insights"]} <= set(concept["sources"]) and up["insights"]
    insight = up["insights"][0]
    down = client.get(f"/api/items/{insight['id']}").json()
    assert concept["id"] in {c["id"] for c in down["concepts"]}  # the insight knows its concept
    assert down["pages"] and down["pages"][0]["level"] == "page"
    memory = client.get(f"/api/items/{ids[RECOLLECTION]}").json()
    assert memory["item"]["level"] == "recollection" and len(memory["sources"]) == 2


def test_search_takes_every_option(client: Any) -> None:
    hits = client.get("/api/search", params={"q": "Holm Orchards pilot", "level": ["insight"], "k": 3}).json()
    assert 1 <= len(hits) <= 3 and {h["level"] for h in hits} == {"insight"}
    bm25 = client.get(
        "/api/search",
        params={"q": "Ruth Calder", "mode": "bm25", "level": "insight,page", "doc": "*handbook*"},
    ).json()
    assert bm25 and all(h["source"].endswith("handbook.md") for h in bm25)
    assert all(h["vector"] is None for h in bm25)
    weighted = client.get("/api/search", params={"q": "incident log", "fusion": "weighted"}).json()
    assert weighted


def test_stats_counts_items_per_level(client: Any) -> None:
    stats = client.get("/api/stats").json()
    docs = client.get("/api/documents").json()
    assert stats["items"]["page"] == sum(d["items"].get("page", 0) for d in docs)
    assert stats["documents"] == {"ready": 11} or sum(stats["documents"].values()) == 11
    assert "usage" in stats


def test_openapi_lists_the_api_and_docs_page_needs_no_cdn(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/documents",
        "/api/documents/{ref}",
        "/api/items/{item_id}",
        "/api/search",
        "/api/ask",
        "/api/stats",
        "/api/ingest",
    ):
        assert path in spec["paths"], path
    page = client.get("/docs")
    assert page.status_code == 200 and "/static/docs.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text


def test_the_page_is_served_with_its_assets_and_no_external_url(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "handbook" in page.text.lower()  # the document list is rendered on the server
    for asset in ("/static/app.js", "/static/app.css"):
        body = client.get(asset)
        assert body.status_code == 200 and "https://" not in body.text
    assert client.get("/static/../app.py").status_code == 404


# --- bad input -------------------------------------------------------------------------------------


def test_errors_are_json_with_proper_codes(client: Any) -> None:
    cases = [
        ("/api/items/999999999", 404, "not_found"),
        ("/api/documents/999999999", 404, "not_found"),
        ("/api/documents/no-such-file.md", 404, "not_found"),
        ("/api/search?q=pilot&level=chapter", 400, "bad_request"),
        ("/api/search?q=%20%20", 400, "bad_request"),
        ("/api/search?q=pilot&mode=fuzzy", 422, "invalid_request"),
        ("/api/search", 422, "invalid_request"),
        ("/api/items/abc", 422, "invalid_request"),
        ("/api/nothing-here", 404, "not_found"),
    ]
    for url, status, name in cases:
        reply = client.get(url)
        assert reply.status_code == status, (url, reply.text)
        body = reply.json()
        assert body["error"] == name and body["detail"], (url, body)
        assert "Traceback" not in reply.text
    assert "chapter" in client.get("/api/search?q=pilot&level=chapter").json()["detail"]


def test_an_empty_question_is_refused(client: Any) -> None:
    reply = client.post("/api/ask", json={"question": "  "})
    assert reply.status_code == 400 and reply.json()["error"] == "bad_request"


# --- ingest ----------------------------------------------------------------------------------------


def test_an_uploaded_file_is_ingested_and_searchable(client: Any) -> None:
    text = b"# Greenhouse memo\n\nThe greenhouse sensors report humidity every ninety seconds.\n"
    reply = client.post("/api/ingest", files={"file": ("greenhouse memo.md", text, "text/markdown")})
    assert reply.status_code == 200, reply.text
    assert reply.json()["counts"]["added"] == 1
    hits = client.get("/api/search", params={"q": "greenhouse humidity sensors", "level": "page"}).json()
    assert hits[0]["source"].endswith("greenhouse memo.md")
    again = client.post("/api/ingest", files={"file": ("greenhouse memo.md", text, "text/markdown")})
    assert again.json()["counts"]["unchanged"] == 1


def test_an_oversize_upload_is_refused(client: Any) -> None:
    reply = client.post("/api/ingest", files={"file": ("big.txt", b"word " * 20_000, "text/plain")})
    assert reply.status_code == 413 and reply.json()["error"] == "too_large"


def test_a_pdf_of_random_bytes_is_a_422_with_the_reason(client: Any) -> None:
    reply = client.post("/api/ingest", files={"file": ("broken.pdf", os.urandom(4000), "application/pdf")})
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["error"] == "ingest_failed" and body["detail"].startswith("broken.pdf: ")
    assert body["report"]["counts"]["failed"] == 1


def test_an_upload_without_a_name_or_content_is_refused(client: Any) -> None:
    assert client.post("/api/ingest", files={"file": ("empty.md", b"", "text/markdown")}).status_code == 400
    assert client.post("/api/ingest").status_code == 422


# --- ask -------------------------------------------------------------------------------------------


def sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_streamed_ask_sends_steps_then_text_then_the_validated_answer(client: Any) -> None:
    with client.stream("POST", "/api/ask", json={"question": QUESTION, "stream": True}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = sse("".join(reply.iter_text()))
    kinds = [name for name, _ in events]
    steps = [(d["tool"], d["phase"]) for name, d in events if name == "step"]
    assert steps == [("search", "start"), ("search", "done"), ("note", "start"), ("note", "done")]
    assert events[0][1]["args"] == {"query": "Holm Orchards pilot start"}
    assert kinds[-1] == "answer" and kinds.count("answer") == 1
    texts = [i for i, name in enumerate(kinds) if name == "text"]
    assert len(texts) == 5 and max(i for i, name in enumerate(kinds) if name == "step") < texts[0]
    answer = events[-1][1]
    streamed = "".join(d["text"] for name, d in events if name == "text")
    assert answer["text"] == streamed.strip()
    assert len(answer["citations"]) == 1 and answer["citations"][0]["cite"] in streamed
    assert answer["usage"]["requests"] == 4


def test_a_plain_ask_returns_the_answer_as_json(client: Any) -> None:
    reply = client.post("/api/ask", json={"question": QUESTION})
    assert reply.status_code == 200
    answer = reply.json()
    assert answer["citations"] and answer["model"]


def test_without_a_model_the_stream_has_one_search_and_the_evidence(kp: Any, ids: Any) -> None:
    with TestClient(create_app(kp)) as plain:
        events = sse(plain.post("/api/ask", json={"question": QUESTION, "stream": True}).text)
    assert [n for n, _ in events] == ["step", "step", "answer"]
    assert events[-1][1]["model"] is None and events[-1][1]["evidence"]


# --- auth ------------------------------------------------------------------------------------------


def test_a_token_is_required_and_a_wrong_one_refused(guarded: Any) -> None:
    assert guarded.get("/api/stats").status_code == 401
    assert guarded.get("/api/stats").json()["error"] == "unauthorized"
    bad = guarded.get("/api/stats", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    ok = guarded.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "items" in ok.json()
    assert guarded.get("/openapi.json").status_code == 401
    assert guarded.get("/api/stats?token=" + TOKEN).status_code == 401  # no tokens in API URLs


def test_a_browser_gives_the_token_once_and_keeps_a_strict_httponly_cookie(kp: Any, ids: Any) -> None:
    with TestClient(create_app(kp, token=TOKEN)) as browser:
        first = browser.get("/", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/login")
        assert browser.get("/?token=wrong", follow_redirects=False).headers["location"] == "/login?failed=1"
        given = browser.get(f"/?token={TOKEN}", follow_redirects=False)
        assert given.status_code == 303 and given.headers["location"] == "/"
        cookie = given.headers["set-cookie"]
        assert cookie.startswith(COOKIE) and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert TOKEN not in cookie
        assert browser.get("/").status_code == 200
        assert browser.get("/api/stats").status_code == 200  # the page's own requests
    with TestClient(create_app(kp, token=TOKEN)) as form:
        assert form.get("/login").status_code == 200
        wrong = form.post("/login", data={"token": "nope"}, follow_redirects=False)
        assert wrong.headers["location"] == "/login?failed=1"
        right = form.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
        assert right.headers["location"] == "/" and COOKIE in right.headers["set-cookie"]
        assert form.get("/api/documents").status_code == 200


@pytest.mark.unit
def test_without_a_token_only_loopback_addresses_are_allowed() -> None:
    from pyramid.errors import ConfigError

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(ConfigError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)


def test_the_serve_command_refuses_a_public_address_without_a_token() -> None:
    from conftest import run_cli

    done = run_cli("serve", "--host", "0.0.0.0")
    assert done.returncode == 2 and "without a token" in done.stderr
    help_text = run_cli("serve", "--help")
    assert help_text.returncode == 0 and "--token" in help_text.stdout


# --- a real browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url(kp: Any, ids: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app served by uvicorn on a free loopback port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(kp, model=streaming_model(delay=0.05), upload_dir=tmp_path_factory.mktemp("up"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _browser() -> Any:
    import shutil

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no system chromium + chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never downloads anything.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.mark.slow
def test_a_browser_searches_opens_a_document_and_follows_a_citation(live_url: str, tmp_path: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    wait = WebDriverWait(browser, 60)
    try:
        browser.get(live_url + "/")
        assert browser.title == "knowledge-pyramid"
        box = browser.find_element(By.ID, "q")
        box.send_keys("Holm Orchards pilot", Keys.ENTER)
        wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "#search-results .hit")))
        assert "Holm" in browser.find_element(By.ID, "search-results").text
        browser.save_screenshot(str(tmp_path / "search.png"))

        browser.get(live_url + "/#/docs")
        link = wait.until(seen.element_to_be_clickable((By.PARTIAL_LINK_TEXT, "andbook")))
        link.click()
        wait.until(seen.visibility_of_element_located((By.CSS_SELECTOR, "#view-doc h1")))
        doc = browser.find_element(By.ID, "view-doc").text
        assert "Concepts (" in doc and "Insights (" in doc and "Pages (" in doc
        assert "null" not in doc.split() and "undefined" not in doc.split()
        browser.save_screenshot(str(tmp_path / "document.png"))

        browser.get(live_url + "/#/ask")
        question = wait.until(seen.visibility_of_element_located((By.ID, "question")))
        question.send_keys(QUESTION)
        browser.find_element(By.CSS_SELECTOR, "#ask-form button").click()
        cite = wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, "#ask-answer a.cite")))
        steps = browser.find_element(By.ID, "ask-steps").text
        assert "search Holm Orchards pilot start" in steps and "note" in steps
        sources = browser.find_element(By.ID, "ask-sources").text
        assert "Sources" in sources and "null" not in sources.split()
        browser.save_screenshot(str(tmp_path / "answer.png"))
        cite.click()
        mark = wait.until(seen.visibility_of_element_located((By.CSS_SELECTOR, "#view-page mark")))
        supporting = browser.find_element(By.ID, "supporting").text
        assert mark.text.strip() and set(mark.text.split()) & set(supporting.split())
        browser.save_screenshot(str(tmp_path / "cited-page.png"))
        assert all(
            (tmp_path / f"{name}.png").stat().st_size > 1000 for name in ("search", "document", "answer")
        )
        keep = os.environ.get("KP_SCREENSHOTS")  # for a look: copy them out
        if keep:
            import shutil

            for shot in tmp_path.glob("*.png"):
                shutil.copy(shot, keep)
    finally:
        browser.quit()


@pytest.mark.unit
def test_the_terminal_streamer_shows_steps_then_writes_the_text_as_it_comes(monkeypatch: Any) -> None:
    import io

    from rich.console import Console

    import pyramid.store  # noqa: F401  (on main, `import pyramid.ask` first is a circular import)
    from pyramid.ask import AskEvent
    from pyramid.cli import ask as cli_ask

    screen, status = io.StringIO(), io.StringIO()
    monkeypatch.setattr(cli_ask, "out", Console(file=screen, force_terminal=True))
    terminal = Console(file=status, force_terminal=True, width=100)
    monkeypatch.setattr(cli_ask, "err", terminal)
    monkeypatch.setattr("pyramid.cli.common.err", terminal)  # the start-up spinner's console
    with cli_ask.Stages(enabled=True) as stages, cli_ask.Streamer(stages) as streamer:
        streamer(AskEvent("tool_call", tool="search", args={"query": "pilot start"}))
        assert not streamer.wrote and screen.getvalue() == ""
        streamer(AskEvent("text", text="The pilot "))
        streamer(AskEvent("text", text="starts."))
        assert screen.getvalue() == "The pilot starts."
        streamer(AskEvent("reset"))
        assert not streamer.wrote  # the final answer is printed whole, not taken as already shown
        streamer(AskEvent("text", text="Cancelled [memo.pdf]."))
        streamer(AskEvent("reset", summary="the model kept citing sources that are not in the evidence"))
    assert "written again" in status.getvalue()
    assert "The answer above is not used: the model kept citing" in status.getvalue()
