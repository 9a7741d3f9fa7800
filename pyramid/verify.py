"""``recollections verify``: re-check learned recollections against their sources as they read now.

A learned recollection goes stale when an item it cites, or that item's document, changes or goes
(the triggers of migration 003 over its provenance rows). ``verify`` re-checks the stale ones (all
live ones with ``every``):

- **without a model** (the cheap check, also run at the end of ``sync``): every cited item must still
  be stored with the same text (the sha256 recorded when it was learned); an item re-created with
  the same text in the same document (a re-distilled document) counts, and the provenance follows it.
  Then the recollection is ``valid`` again; otherwise it is ``retired``: kept with its audit trail,
  shown with ``--all``, never a search hit.
- **with a model**: the model reads the statement and its sources as they are now (for an item that
  is gone, what its document says now on the same pages at the same level) and answers supported,
  revise (with a new statement) or unsupported: ``valid``, ``revised`` (the old text goes on the
  history) or ``retired``. The statement it keeps or writes is checked against those sources like
  a learned one (``pyramid.learn.unsupported``), and must still rest on two items or more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .learn import MIN_ITEMS, best_source, cited_entry, unsupported
from .models import Usage, Verdict, VerifyReport

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from pydantic_ai.models import Model

    from .runtime import Runtime

REPLACEMENTS = 3  # current items shown to the model for one cited item that is gone


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def verify(rt: Runtime, *, model: str | Model | None = None, every: bool = False) -> VerifyReport:
    """Re-check the stale learned recollections (``every``: all live ones); see the module."""
    from .agents.base import model_label, resolve_model
    from .store import learned

    async with rt.db.connection() as conn:
        todo = await learned.to_verify(conn, every=every)
    llm = resolve_model(model) if model is not None else None
    report = VerifyReport(checked=len(todo), model=model_label(model) if model is not None else None)
    for row in todo:
        report.verdicts.append(await _verify_one(rt, row, llm, report))
    return report


async def _sources_now(
    conn: AsyncConnection[Any], cited: list[dict[str, Any]]
) -> tuple[list[Any], list[Any]]:
    """(current rows of the cited items that still hold their text, cited entries that do not)."""
    from .store import learned

    rows = await learned.cited_items(conn, [c["item"] for c in cited])
    present, missing = [], []
    for entry in cited:
        row = rows.get(entry["item"])
        if row is not None and row["content_hash"] == entry["hash"]:
            present.append(row)
            continue
        again = None
        if entry.get("source") and entry.get("hash"):
            again = await learned.same_text_in(
                conn, source=entry["source"], level=entry["level"], content_hash=entry["hash"]
            )
        if again is not None:
            present.append(again)
        else:
            missing.append(entry)
    return present, missing


async def _verify_one(rt: Runtime, row: dict[str, Any], llm: Model | None, report: VerifyReport) -> Verdict:
    item, text, cited = row["item_id"], row["text"], list(row["cited"])
    async with rt.db.connection() as conn:
        present, missing = await _sources_now(conn, cited)
    if llm is None:
        if not missing:
            return await _judge(rt, row, "valid", "every cited item is stored with the same text", present)
        gone = "; ".join(m["ref"] for m in missing)
        return await _judge(rt, row, "retired", f"{len(missing)} cited item(s) changed or are gone: {gone}")
    candidates: list[list[Any]] = [[p] for p in present]
    async with rt.db.connection() as conn:
        from .store import learned

        for entry in missing:
            if entry.get("source"):
                now = await learned.current_on_pages(
                    conn,
                    source=entry["source"],
                    level=entry["level"],
                    pages=entry["pages"],
                    limit=REPLACEMENTS,
                )
                if now:
                    candidates.append(now)
    shown = [r for group in candidates for r in group]
    if not shown:
        return await _judge(rt, row, "retired", "its sources are gone")
    judgement = await _ask_model(rt, llm, text, shown, report, item)
    statement = judgement.text.strip() if judgement.verdict == "revise" else text
    if judgement.verdict == "unsupported":
        return await _judge(rt, row, "retired", "the model found that its sources no longer say it")
    by_id = {r["id"]: r for r in shown}
    best = {best_source(statement, [r["id"] for r in group], by_id) for group in candidates}
    chosen = sorted(i for i in best if i is not None)
    sources = [by_id[i] for i in chosen]
    why = unsupported(statement, [r["text"] for r in sources])
    if why is None and len(sources) < MIN_ITEMS:
        why = f"it rests on {len(sources)} item(s) now"
    if why is not None:
        return await _judge(rt, row, "retired", f"the model kept it ({judgement.verdict}), but {why}")
    if judgement.verdict == "supported" or statement == text:
        return await _judge(rt, row, "valid", "the model found it supported by its sources", sources)
    return await _revise(rt, row, statement, sources)


async def _ask_model(
    rt: Runtime, llm: Model, text: str, shown: list[Any], report: VerifyReport, item: int
) -> Any:
    from .agents.base import CallPolicy, run_agent
    from .agents.verify import VerifyDeps, build_verify_agent, verify_prompt
    from .search.evidence import format_pages

    def where(r: Any) -> str:
        pages = format_pages(r["pages"] or [])
        return f"{r['title'] or r['source']}{', ' + pages if pages else ''}"

    def spent(usage: Usage) -> None:
        report.usage += usage

    return await run_agent(
        build_verify_agent(),
        verify_prompt(text, [(where(r), r["text"]) for r in shown]),
        deps=VerifyDeps(text),
        model=llm,
        policy=CallPolicy.from_settings(rt.settings),
        spent=spent,
        what=f"verifying recollection {item}",
    )


async def _judge(
    rt: Runtime, row: dict[str, Any], status: str, reason: str, sources: list[Any] | None = None
) -> Verdict:
    """Record ``status``; ``sources`` (for a valid one): what it rests on now."""
    from .store import learned

    cited = [cited_entry(r) for r in sources] if sources is not None else list(row["cited"])
    entry = {"at": _now(), "by": "verify", "verdict": status, "reason": reason}
    async with rt.db.connection() as conn, conn.transaction():
        await learned.lock(conn)
        await learned.judge(
            conn, row["item_id"], status=status, cited=cited, entry=entry, fresh=sources is not None
        )
    return Verdict(id=row["item_id"], status=status, text=row["text"], reason=reason)


async def _revise(rt: Runtime, row: dict[str, Any], statement: str, sources: list[Any]) -> Verdict:
    from . import store
    from .store import learned

    vector = (await rt.embedder.aencode_documents([store.embedded_text("recollection", None, statement)]))[0]
    cited = [cited_entry(r) for r in sources]
    key = ",".join(str(c["item"]) for c in sorted(cited, key=lambda c: c["item"]))
    entry = {
        "at": _now(),
        "by": "verify",
        "verdict": "revised",
        "text": row["text"],
        "question": row["question"],
        "model": row["model"],
        "sources": row["cited"],
    }
    async with rt.db.connection() as conn, conn.transaction():
        await learned.lock(conn)
        if (same := await learned.same_finding(conn, key, vector, 2.0)) is not None and same[
            "item_id"
        ] != row["item_id"]:
            # The revision says what another live recollection rests on: that one stays, this one goes.
            reason = f"revised, it would repeat recollection {same['item_id']}"
            await learned.judge(
                conn,
                row["item_id"],
                status="retired",
                cited=list(row["cited"]),
                entry={"at": _now(), "by": "verify", "verdict": "retired", "reason": reason},
                fresh=False,
            )
            return Verdict(id=row["item_id"], status="retired", text=row["text"], reason=reason)
        await learned.revise(
            conn,
            row["item_id"],
            text=statement,
            embedding=vector,
            content_hash=store.text_hash(statement),
            key=key,
            question=row["question"],
            model=row["model"],
            cited=cited,
            status="revised",
            entry=entry,
        )
    return Verdict(
        id=row["item_id"], status="revised", text=statement, reason="the model revised it to fit its sources"
    )
