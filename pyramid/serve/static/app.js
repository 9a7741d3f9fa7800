"use strict";
// The pyramid's web page: hash routes over the JSON API. Every text from the pyramid goes in as
// textContent (document text is data, never markup).

const LEVELS = ["abstract", "concept", "insight", "page", "recollection"];
const COLORS = { abstract: "#7b4bb7", concept: "#2f8a4c", insight: "#2b6cb0", page: "#8a8f98", recollection: "#c26a00" };
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
function put(el, ...kids) { el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false)); }
function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(path, options) {
  const res = await fetch(path, { credentials: "same-origin", ...(options || {}) });
  const body = await res.json().catch(() => ({ error: "bad_response", detail: res.statusText }));
  if (!res.ok) throw new Error(`${body.error || res.status}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`);
  return body;
}
function showError(err) { const e = $("error"); e.textContent = String(err.message || err); e.hidden = false; }
function pagesText(pages) { return !pages || !pages.length ? "" : (pages.length === 1 ? "p. " : "pp. ") + pages.join(", "); }
function badge(level) { return h("span", { class: `level ${level}` }, level); }

// An item's link: a page (or an item with a page) opens the page with the item's text marked.
function itemHref(item) {
  if (item.level === "page" && item.document_id) return `#/page/${item.document_id}/${item.pages[0]}?hl=${item.id}`;
  return `#/item/${item.id}`;
}
function evidenceLine(e) {
  const parts = [badge(e.level), h("a", { href: itemHref(e) }, e.title ? `${e.title}: ` : "", e.text)];
  const where = [e.document_title || e.document, pagesText(e.pages)].filter(Boolean).join(" · ");
  if (where) {
    const page = e.document_id && e.pages && e.pages.length ? h("a", { href: `#/page/${e.document_id}/${e.pages[0]}?hl=${e.id}` }, where) : where;
    parts.push(" ", h("span", { class: "muted" }, "(", page, ")"));
  }
  if (e.stale) parts.push(" ", h("span", { class: "bad" }, "stale"));
  return h("li", {}, parts);
}

// --- views -------------------------------------------------------------------------------------------
function show(name) {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${name}`;
  $("error").hidden = true;
}

async function runSearch(params) {
  const box = $("search-results");
  put(box, h("p", { class: "muted" }, "Searching…"));
  const hits = await api(`/api/search?${params}`);
  if (!hits.length) { put(box, h("p", {}, "No results.")); return; }
  put(box, ...hits.map((hit) => h("article", { class: "hit" },
    h("div", {}, h("strong", {}, `${hit.rank}. `), badge(hit.level),
      hit.document_id ? h("a", { href: `#/doc/${hit.document_id}` }, hit.document_title || hit.source) : h("span", {}, "(cross-document)"),
      hit.pages.length && hit.document_id ? [" · ", h("a", { href: `#/page/${hit.document_id}/${hit.pages[0]}?hl=${hit.id}` }, pagesText(hit.pages))] : null,
      " ", h("a", { href: `#/item/${hit.id}`, class: "muted" }, `item ${hit.id}`)),
    h("p", {}, hit.title ? h("strong", {}, `${hit.title}: `) : null, hit.text.length > 500 ? hit.text.slice(0, 500) + " …" : hit.text),
    h("div", { class: "muted" }, `fused ${hit.fused.toFixed(4)}` + (hit.bm25 != null ? ` · bm25 ${hit.bm25.toFixed(3)}` : "") + (hit.vector != null ? ` · vector ${hit.vector.toFixed(3)}` : "")))));
}

async function showDocument(id) {
  const view = $("view-doc");
  put(view, h("p", { class: "muted" }, "Loading…"));
  const d = await api(`/api/documents/${id}`);
  const doc = d.document;
  const section = (title, items, render) => items.length ? [h("h2", {}, `${title} (${items.length})`), h("ul", { class: "items" }, items.map(render))] : [];
  const counts = Object.entries(doc.items).map(([level, n]) => h("span", {}, badge(level), String(n)));
  put(view,
    h("h1", {}, doc.title || doc.path),
    h("p", { class: "muted" }, `${doc.source} · ${doc.format} · ${doc.pages} page(s) · ${doc.status}`, doc.distiller ? ` · ${doc.distiller}` : ""),
    doc.error ? h("p", { class: "bad" }, doc.error) : null,
    h("div", { class: "counts" }, counts),
    ...section("Abstract", d.abstract, (a) => h("li", {}, h("a", { href: `#/item/${a.id}` }, a.text))),
    ...section("Concepts", d.concepts, (c) => h("li", {}, h("a", { href: `#/item/${c.id}` }, c.title ? h("strong", {}, `${c.title}: `) : null, c.text),
      " ", h("span", { class: "muted" }, `${c.sources.length} insight(s)`))),
    ...section("Insights", d.insights, (i) => h("li", {}, h("a", { href: `#/item/${i.id}` }, i.text), " ",
      i.pages.length ? h("a", { class: "muted", href: `#/page/${doc.id}/${i.pages[0]}?hl=${i.id}` }, pagesText(i.pages)) : null)),
    ...section("Recollections", d.recollections, (r) => h("li", {}, h("a", { href: `#/item/${r.id}` }, r.text), r.stale ? h("span", { class: "bad" }, " stale") : null)),
    ...(d.pages.length ? [h("h2", {}, `Pages (${d.pages.length})`),
      ...d.pages.map((p) => h("details", {}, h("summary", {}, `Page ${p.ordinal}`), h("div", { class: "pagetext" }, p.text),
        h("a", { href: `#/page/${doc.id}/${p.ordinal}` }, "open page")))] : []),
  );
  view.querySelector("h1").focus?.();
}

async function showItem(id) {
  const view = $("view-item");
  put(view, h("p", { class: "muted" }, "Loading…"));
  const x = await api(`/api/items/${id}`);
  const it = x.item;
  const kinds = [["pages", "Pages it rests on"], ["sources", "Sources"], ["insights", "Insights"], ["concepts", "Concepts"],
    ["abstract", "Abstract"], ["recollections", "Recollections built on it"]];
  put(view,
    h("h1", {}, badge(it.level), it.title || `item ${it.id}`),
    h("p", {}, it.text),
    h("p", { class: "muted" }, it.cite, it.document_id ? [" · ", h("a", { href: `#/doc/${it.document_id}` }, it.document_title || it.document)] : null),
    ...kinds.flatMap(([key, title]) => x[key].length ? [h("h2", {}, `${title} (${x[key].length})`), h("ul", { class: "items" }, x[key].map(evidenceLine))] : []),
    ...(x.documents.length ? [h("h2", {}, "Documents"), h("ul", { class: "items" }, x.documents.map((d) => h("li", {}, d.id ? h("a", { href: `#/doc/${d.id}` }, d.title || d.document) : d.document)))] : []),
  );
}

// The sentences of a page that carry the supporting text: each sentence is scored by the share of
// its words found in the support, and those near the best score are marked.
const WORD = /[\p{L}\p{N}]{3,}/gu;
function words(text) { return new Set((text.toLowerCase().match(WORD) || [])); }
function highlight(pageText, support) {
  const box = h("div", { class: "pagetext" });
  const want = words(support.join(" "));
  const pieces = pageText.split(/(?<=[.!?])(\s+)|(\n+)/).filter((p) => p !== undefined && p !== "");
  const scores = pieces.map((p) => { const w = [...words(p)]; return w.length ? w.filter((x) => want.has(x)).length / w.length : 0; });
  const best = Math.max(0, ...scores);
  let first = null;
  pieces.forEach((p, i) => {
    if (best >= 0.5 && scores[i] >= Math.max(0.5, best * 0.8) && /\S/.test(p)) {
      const m = h("mark", {}, p); box.append(m); first = first || m;
    } else box.append(p);
  });
  return [box, first];
}

async function showPage(docId, page, hl) {
  const view = $("view-page");
  put(view, h("p", { class: "muted" }, "Loading…"));
  const [d, x] = await Promise.all([api(`/api/documents/${docId}`), hl ? api(`/api/items/${hl}`) : null]);
  const p = d.pages.find((q) => q.ordinal === page);
  if (!p) throw new Error(`not_found: page ${page} of document ${docId}`);
  let support = [];
  if (x) {
    support = x.item.level === "page" ? [] : [x.item.text];
    // A concept or an abstract rests on insights: mark the ones on this page.
    for (const i of x.insights) if (i.pages.includes(page) && x.item.level !== "page") support.push(i.text);
  }
  const [box, first] = highlight(p.text, support);
  const prev = page > 1 ? h("a", { href: `#/page/${docId}/${page - 1}` }, "← previous page") : null;
  const next = page < d.pages.length ? h("a", { href: `#/page/${docId}/${page + 1}` }, "next page →") : null;
  put(view,
    h("h1", {}, `${d.document.title || d.document.path}, p. ${page}`),
    h("p", { class: "muted" }, h("a", { href: `#/doc/${docId}` }, "the whole document"), " · ", d.document.source),
    x && x.item.level !== "page" ? h("p", { class: "card", id: "supporting" }, badge(x.item.level), "Supporting: ", h("a", { href: `#/item/${x.item.id}` }, x.item.text)) : null,
    box,
    h("p", {}, prev, prev && next ? " · " : null, next),
  );
  if (first) first.scrollIntoView({ block: "center" });
}

function bars(title, rows, keys) {
  // rows: [{label, values: {key: n}}]; a horizontal stacked bar per row.
  const width = 760, left = 220, rowH = 24, top = 8;
  const max = Math.max(1, ...rows.map((r) => keys.reduce((s, k) => s + (r.values[k] || 0), 0)));
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${top + rows.length * rowH + 8}`, role: "img", "aria-label": title });
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const label = r.label.length > 34 ? r.label.slice(0, 33) + "…" : r.label;
    chart.append(svg("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, label));
    let x = left, total = 0;
    for (const k of keys) {
      const n = r.values[k] || 0; total += n;
      if (!n) continue;
      const w = (n / max) * (width - left - 60);
      chart.append(svg("rect", { x, y: y + 3, width: Math.max(w, 1), height: rowH - 8, fill: COLORS[k] || "#888" }, svg("title", {}, `${r.label}: ${n} ${k}`)));
      x += w;
    }
    chart.append(svg("text", { x: x + 6, y: y + 15 }, String(total)));
  });
  const legend = h("div", { class: "legend" }, keys.map((k) => h("span", {}, svgSwatch(COLORS[k]), k)));
  return [h("h2", {}, title), legend, chart];
}
function svgSwatch(color) { const s = svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, fill: color })); return s; }

async function showStats() {
  const view = $("view-stats");
  put(view, h("p", { class: "muted" }, "Loading…"));
  const [stats, docs] = await Promise.all([api("/api/stats"), api("/api/documents")]);
  const perLevel = LEVELS.filter((l) => stats.items[l]).map((l) => ({ label: l, values: { [l]: stats.items[l] } }));
  const perDoc = docs.map((d) => ({ label: d.title || d.path, values: d.items }));
  const docStatus = Object.entries(stats.documents).map(([s, n]) => `${n} ${s}`).join(", ");
  const u = stats.usage;
  put(view,
    h("h1", {}, "Stats"),
    h("p", {}, `Documents: ${docStatus || "none"}. LLM usage: ${u.requests} requests, ${u.input_tokens} input tokens, ${u.output_tokens} output tokens.`),
    ...bars("Items per level", perLevel, LEVELS),
    ...bars("Items per document", perDoc, LEVELS),
  );
}

// --- ask: a streamed answer whose citations link to the cited page ----------------------------------
function linkCitations(text, citations) {
  const box = $("ask-answer");
  put(box);
  const byCite = new Map(citations.map((c) => [c.cite, c]));
  const pattern = /\[[^\[\]\n]{1,400}\](?!\()/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    box.append(text.slice(last, m.index));
    const c = byCite.get(m[0]);
    box.append(c ? h("a", { class: "cite", href: `#/cite/${c.item_id}/${c.pages[0] || 0}` }, m[0]) : m[0]);
    last = m.index + m[0].length;
  }
  box.append(text.slice(last));
}

async function openCitation(itemId, page) {
  const x = await api(`/api/items/${itemId}`);
  const docId = x.item.document_id;
  if (docId && (page || x.item.pages[0])) { location.replace(`#/page/${docId}/${page || x.item.pages[0]}?hl=${itemId}`); return; }
  location.replace(`#/item/${itemId}`);
}

async function ask(question) {
  const steps = $("ask-steps"), answer = $("ask-answer"), sources = $("ask-sources");
  put(steps); put(answer); put(sources);
  const res = await fetch("/api/ask", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ question, stream: true }) });
  if (!res.ok) { const b = await res.json().catch(() => ({})); throw new Error(`${b.error || res.status}: ${b.detail || ""}`); }
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = "", written = "";
  const pending = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1];
      const data = JSON.parse((block.match(/^data: (.*)$/m) || [, "{}"])[1]);
      if (event === "step" && data.phase === "start") {
        const li = h("li", {}, `${data.tool} ${data.args.query || data.args.text || (data.args.item_id != null ? "item " + data.args.item_id : "")}`);
        steps.append(li); pending.push(li);
      } else if (event === "step") {
        const li = pending.shift(); if (li) { li.className = "done"; if (data.summary) li.append(h("span", { class: "muted" }, ` → ${data.summary}`)); }
      } else if (event === "text") { written += data.text; answer.textContent = written; }
      else if (event === "reset") { written = ""; answer.textContent = ""; }
      else if (event === "answer") { finishAnswer(data); }
      else if (event === "error") throw new Error(`${data.error}: ${data.detail}`);
    }
  }
}

function finishAnswer(a) {
  linkCitations(a.text, a.citations);
  const sources = $("ask-sources");
  const list = a.citations.map((c) => h("li", {}, h("a", { href: `#/cite/${c.item_id}/${c.pages[0] || 0}` }, c.cite), " ", badge(c.level), c.quote));
  const usage = a.usage;
  put(sources,
    ...(a.notices || []).map((notice) => h("p", { class: "muted" }, notice)),
    a.partial ? h("p", { class: "bad" }, `Partial: ${a.stopped || "the research stopped early"}`) : null,
    (a.rejected_citations || []).length ? h("p", { class: "bad" }, `Removed citations not in the evidence: ${a.rejected_citations.join(" ")}`) : null,
    list.length ? h("h2", {}, "Sources") : null, list.length ? h("ul", { class: "items" }, list) : null,
    h("p", { class: "muted" }, a.model ? `${usage.requests} requests, ${usage.input_tokens} input + ${usage.output_tokens} output tokens · ${a.elapsed.toFixed(1)} s · ${a.model}` : `No LLM: best evidence · ${a.elapsed.toFixed(1)} s`),
  );
}

// --- routing -----------------------------------------------------------------------------------------
async function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  try {
    if (parts[0] === "ask") show("ask");
    else if (parts[0] === "docs") show("docs");
    else if (parts[0] === "doc") { show("doc"); await showDocument(parts[1]); }
    else if (parts[0] === "item") { show("item"); await showItem(parts[1]); }
    else if (parts[0] === "page") { show("page"); await showPage(parts[1], Number(parts[2]), params.get("hl")); }
    else if (parts[0] === "cite") { await openCitation(parts[1], Number(parts[2])); }
    else if (parts[0] === "stats") { show("stats"); await showStats(); }
    else {
      show("search");
      if (params.get("q")) {
        const form = $("search-form");
        form.q.value = params.get("q");
        const levels = params.getAll("level");
        for (const box of form.querySelectorAll("input[name=level]")) box.checked = levels.includes(box.value);
        if (params.get("mode")) form.mode.value = params.get("mode");
        await runSearch(params);
      }
    }
  } catch (err) { showError(err); }
}

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.target, params = new URLSearchParams();
  params.set("q", form.q.value);
  for (const box of form.querySelectorAll("input[name=level]:checked")) params.append("level", box.value);
  if (form.mode.value !== "hybrid") params.set("mode", form.mode.value);
  location.hash = `#/?${params}`;
});
$("ask-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  ask(ev.target.question.value).catch(showError);
});
$("question").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("ask-form").requestSubmit(); });
window.addEventListener("hashchange", route);
route();
