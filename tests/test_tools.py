"""The pyramid for other agents: Pyramid.expand/evidence, the PydanticAI toolset (the README example,
run with a scripted model), and the MCP server in a subprocess driven by a real MCP client session."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from typing import Any

import pytest
from ask_helpers import call, ingest_examples, item_id, scripted, text, tool_returns
from conftest import ROOT
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo

from pyramid.errors import NotFoundError

START = "Lucia Berg confirmed that the Holm Orchards pilot starts on 14 April"


# Two stored files with one name: a citation must say which one, the same way in every call.
WALRUS = "The walrus quota for the Svalbard cooperative is forty tonnes a season."
NARWHAL = "The narwhal census of the Svalbard cooperative counted two hundred animals."


@pytest.fixture(scope="module")
def ids(kp: Any) -> dict[str, int]:
    return ingest_examples(kp)


@pytest.fixture(scope="module")
def twins(kp: Any, ids: Any) -> dict[str, int]:
    """``q1/report.pdf`` and ``q2/report.pdf``, one insight each; returns which item is which."""
    from search_helpers import store_document

    walrus = store_document(kp, "/data/q1/report.pdf", [("insight", WALRUS)], embed=True)["0"]
    narwhal = store_document(kp, "/data/q2/report.pdf", [("insight", NARWHAL)], embed=True)["0"]
    return {"walrus": walrus, "narwhal": narwhal}


def _label(cite: str) -> str:
    return cite.strip("[]").rsplit(", p", 1)[0]


def test_expand_walks_every_level(kp: Any, ids: dict[str, int]) -> None:
    insight = kp.expand(item_id(ids, START))
    assert insight.item.level == "insight" and insight.item.cite == "[meeting-notes-2031-03-03.txt, p. 1]"
    [page] = insight.pages
    assert page.level == "page" and page.pages == [1] and "Weekly leads meeting" in page.text
    concept = insight.concepts[0]
    [abstract] = insight.abstract
    # An abstract cites its document (the distiller may give it the document's pages).
    assert abstract.level == "abstract" and abstract.cite.startswith("[meeting-notes-2031-03-03.txt")

    from_concept = kp.expand(concept.id)
    assert insight.item.id in [i.id for i in from_concept.insights] and from_concept.abstract == [abstract]
    assert concept.id in [c.id for c in kp.expand(abstract.id).concepts]
    assert insight.item.id in [i.id for i in kp.expand(page.id).insights]

    recollection = kp.expand(item_id(ids, "Ruth Calder, the Head of Safety"))
    assert recollection.item.cite == f"[recollection {recollection.item.id}]"
    assert sorted(s.document for s in recollection.sources) == ["handbook.md", "news.rss#fh-2031-04"]
    assert [d.document for d in recollection.documents] == ["handbook.md"]
    handbook_insight = (
        recollection.sources[0].id
        if recollection.sources[0].document == "handbook.md"
        else recollection.sources[1].id
    )
    assert recollection.item.id in [r.id for r in kp.expand(handbook_insight).recollections]

    with pytest.raises(NotFoundError, match="no item with id 987654321"):
        kp.expand(987654321)


def test_evidence_searches_the_ask_levels_and_cites_each_hit(kp: Any, ids: Any) -> None:
    found = kp.evidence("Picker P3 battery capacity", k=5)
    assert len(found) == 5 and {e.level for e in found} <= {"insight", "concept", "abstract", "recollection"}
    assert all(e.cite.startswith("[") and e.score is not None for e in found)
    assert {e.level for e in kp.evidence("battery", levels="page", k=3)} == {"page"}


def _readme_toolset_example() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Using the pyramid from your own agents", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def test_the_readme_toolset_example_runs_with_a_scripted_model(dsn: str, ids: Any) -> None:
    code = _readme_toolset_example()
    assert len(code.strip().splitlines()) <= 10
    assert 'data_dir="~/kp"' in code and '"openai:gpt-4.1-mini"' in code

    def search_then_expand(messages: list[ModelMessage], info: AgentInfo) -> Any:
        hits = tool_returns(messages, "search")[-1].content
        return call("expand", item_id=next(h["id"] for h in hits if h["text"].startswith(START)))

    def answer(messages: list[ModelMessage], info: AgentInfo) -> Any:
        expansion = tool_returns(messages, "expand")[-1].content
        return text(
            f"It starts on 14 April {expansion['item']['cite']}; see {expansion['pages'][0]['cite']}."
        )

    model, seen = scripted(
        call("search", query="Holm Orchards pilot starts on 14 April"), search_then_expand, answer
    )
    runnable = code.replace('data_dir="~/kp"', "dsn=DSN").replace('"openai:gpt-4.1-mini"', "MODEL")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(runnable, "README.md", "exec"), {"DSN": dsn, "MODEL": model})  # noqa: S102 (the README's own code)
    assert printed.getvalue().strip() == (
        "It starts on 14 April [meeting-notes-2031-03-03.txt, p. 1]; see [meeting-notes-2031-03-03.txt, p. 1]."
    )
    assert len(seen) == 3


def test_the_toolset_offers_search_and_expand_and_sends_mistakes_back(kp: Any, ids: Any) -> None:
    from pydantic_ai import Agent

    offered: list[set[str]] = []

    def bad_then_good(messages: list[ModelMessage], info: AgentInfo) -> Any:
        offered.append({t.name for t in info.function_tools})
        if len(offered) == 1:
            return call("search", query="pilot", levels=["chapter"])
        if len(offered) == 2:
            return call("search", query="pilot", k=0)
        if len(offered) == 3:
            return call("expand", item_id=987654321)
        return text("ok")

    model, seen = scripted(bad_then_good)
    agent = Agent(model, toolsets=[kp.toolset()])
    assert agent.run_sync("q").output == "ok"
    assert offered[0] == {"search", "expand"}
    retries = [r.model_response_str() for r in tool_returns(seen[-1]) if r.outcome == "retried"]
    assert len(retries) == 3 and '"input":"chapter"' in retries[0]  # refused by the tool's schema (a Literal)
    assert "k must be between 1 and 50" in retries[1] and "no item with id 987654321" in retries[2]


def test_one_toolset_names_a_file_the_same_way_in_every_call(kp: Any, twins: dict[str, int]) -> None:
    from pydantic_ai import Agent

    def first(messages: list[ModelMessage], info: AgentInfo) -> Any:
        return call("search", query="narwhal census Svalbard", levels=["insight"], k=1)

    def second(messages: list[ModelMessage], info: AgentInfo) -> Any:
        return call("search", query="walrus quota Svalbard", levels=["insight"], k=1)

    def third(messages: list[ModelMessage], info: AgentInfo) -> Any:
        return call("expand", item_id=twins["narwhal"])

    model, seen = scripted(first, second, third, text("ok"))
    found: list[int] = []
    tools = kp.toolset(on_found=lambda items: found.extend(item.id for item in items))
    assert Agent(model, toolsets=[tools]).run_sync("q").output == "ok"
    [narwhal], [walrus] = (r.content for r in tool_returns(seen[-1], "search"))
    assert (narwhal["id"], walrus["id"]) == (twins["narwhal"], twins["walrus"])
    # The first file seen gets the short name; the other one a longer one, and keeps its own.
    assert _label(narwhal["cite"]) == "report.pdf"
    assert _label(walrus["cite"]) == "q1/report.pdf"
    [expanded] = (r.content for r in tool_returns(seen[-1], "expand"))
    assert expanded["item"]["cite"] == narwhal["cite"]
    assert found[:2] == [twins["narwhal"], twins["walrus"]]  # on_found saw every item shown
    # A new toolset is a new session: its own table.
    assert kp.tool_session().labels is not kp.tool_session().labels


@pytest.mark.anyio
async def test_one_mcp_session_names_a_file_the_same_way_in_every_call(
    dsn: str, twins: dict[str, int]
) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRAMID_DSN": dsn}
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "pyramid", "mcp"], env=env, cwd=str(ROOT)
    )
    async with (
        stdio_client(server, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        cites = {}
        for name, query in (("narwhal", "narwhal census Svalbard"), ("walrus", "walrus quota Svalbard")):
            result = await session.call_tool("search", {"query": query, "levels": ["insight"], "k": 1})
            [hit] = result.structured_content["result"]
            assert hit["id"] == twins[name]
            cites[name] = hit["cite"]
    assert _label(cites["narwhal"]) == "report.pdf"
    assert _label(cites["walrus"]) == "q1/report.pdf"


@pytest.mark.anyio
async def test_mcp_server_serves_search_and_expand_to_a_real_client(dsn: str, ids: dict[str, int]) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRAMID_DSN": dsn}
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "pyramid", "mcp"], env=env, cwd=str(ROOT)
    )
    # The server logs to stderr, which pytest captures.
    async with (
        stdio_client(server, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"search", "expand"}
        assert tools["search"].annotations.read_only_hint is True
        assert "levels" in tools["search"].input_schema["properties"]

        result = await session.call_tool(
            "search", {"query": "When does the Holm Orchards pilot start?", "k": 10}
        )
        assert not result.is_error
        hits = result.structured_content["result"]  # a list result comes wrapped in an object
        assert hits == [json.loads(block.text) for block in result.content]  # and one text block per item
        insight = item_id(ids, START)
        assert insight in [h["id"] for h in hits]
        assert next(h for h in hits if h["id"] == insight)["cite"] == "[meeting-notes-2031-03-03.txt, p. 1]"

        expanded = await session.call_tool("expand", {"item_id": insight})
        assert not expanded.is_error
        walk = expanded.structured_content
        assert walk["item"]["id"] == insight and walk["pages"][0]["level"] == "page"
        assert walk["abstract"][0]["cite"].startswith("[meeting-notes-2031-03-03.txt")

        missing = await session.call_tool("expand", {"item_id": 987654321})
        assert missing.is_error and "no item with id 987654321" in missing.content[0].text
