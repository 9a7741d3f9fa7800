"use strict";
// Renders /openapi.json as a list of endpoints: offline, no Swagger UI from a CDN.
(async () => {
  const root = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const box = document.createElement("section");
      box.className = "card";
      const head = document.createElement("h2");
      head.textContent = `${method.toUpperCase()} ${path}`;
      box.append(head);
      const summary = document.createElement("p");
      summary.textContent = op.summary || "";
      box.append(summary);
      if (op.description) {
        const d = document.createElement("p");
        d.className = "muted";
        d.textContent = op.description;
        box.append(d);
      }
      const params = op.parameters || [];
      if (params.length) {
        const list = document.createElement("ul");
        for (const p of params) {
          const li = document.createElement("li");
          const type = p.schema && (p.schema.type || (p.schema.anyOf || []).map((s) => s.type || (s.enum || []).join("|")).join(" | "));
          li.textContent = `${p.name} (${p.in}${p.required ? ", required" : ""}${type ? ", " + type : ""})${p.description ? ": " + p.description : ""}`;
          list.append(li);
        }
        box.append(list);
      }
      if (op.requestBody) {
        const b = document.createElement("p");
        b.className = "muted";
        b.textContent = "Body: " + Object.keys(op.requestBody.content || {}).join(", ");
        box.append(b);
      }
      root.append(box);
    }
  }
})();
