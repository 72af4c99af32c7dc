/**
 * `GET /docs`: a rendered API reference for `/openapi.json` that loads nothing from the
 * internet. Scalar, Swagger UI and Redoc fetch megabytes of JavaScript from a CDN by default
 * (and bundling them would multiply the Worker's size), which fails offline and on locked-down
 * networks; this page is one small HTML document whose script builds the reference from the
 * spec with DOM calls (spec text only ever lands in `textContent`, never in markup). The
 * Content-Security-Policy makes "nothing external" a browser-enforced fact, not a promise.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.ts";
import { errorResponses } from "./common.ts";

/** The reference-page sub-app, mounted at the root. */
export const docsApp = new OpenAPIHono<AppEnv>();

/** Only same-origin fetches, inline script and style: the page can load nothing from elsewhere. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

docsApp.openapi(
  createRoute({
    method: "get",
    path: "/docs",
    operationId: "getDocs",
    tags: ["meta"],
    summary: "This document, rendered as an HTML reference",
    security: [],
    responses: { 200: { description: "The reference page.", content: { "text/html": { schema: z.string() } } }, ...errorResponses() },
  }),
  (c) => c.html(DOCS_HTML, 200, { "content-security-policy": DOCS_CSP, "cache-control": "public, max-age=300" }),
);

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kiln API reference</title>
<style>
  :root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --code: rgba(127,127,127,.12); }
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem 4rem; }
  h1 { margin-bottom: 0; } .muted { color: var(--muted); }
  nav { columns: 3 16rem; margin: 1rem 0 2rem; font-size: 14px; } nav a { display: block; text-decoration: none; }
  h2 { border-bottom: 1px solid var(--line); padding-bottom: .25rem; margin-top: 2.5rem; text-transform: capitalize; }
  details.op { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0; }
  details.op > summary { cursor: pointer; padding: .5rem .75rem; list-style: none; display: flex; gap: .75rem; align-items: baseline; }
  .method { font: 600 12px/1 ui-monospace, monospace; padding: .3rem .45rem; border-radius: 4px; color: #fff; min-width: 3.5rem; text-align: center; }
  .get { background: #2563eb; } .post { background: #16a34a; } .put { background: #d97706; } .patch { background: #7c3aed; } .delete { background: #dc2626; }
  .path { font-family: ui-monospace, monospace; } .body { padding: 0 1rem 1rem; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; } td, th { border-top: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
  pre { background: var(--code); padding: .75rem; border-radius: 6px; overflow: auto; font-size: 13px; }
  code { background: var(--code); padding: 0 .25rem; border-radius: 3px; }
</style>
</head>
<body>
<h1 id="title">Kiln API</h1>
<p class="muted">Rendered from <a href="/openapi.json">/openapi.json</a>. Authenticate with <code>Authorization: Bearer kiln_...</code>; errors are always <code>{ "error": { "code", "message", "details?" } }</code>.</p>
<nav id="toc"></nav>
<main id="ops"><p class="muted">Loading…</p></main>
<script>
(async () => {
  const main = document.getElementById("ops");
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (error) {
    main.replaceChildren(el("p", { textContent: "Could not load /openapi.json: " + error }));
    return;
  }
  const refName = (ref) => ref.split("/").pop();
  const resolve = (schema, depth = 0) => {
    if (!schema || depth > 6) return schema;
    if (schema.$ref) return { ...resolve(spec.components?.schemas?.[refName(schema.$ref)], depth + 1), title: refName(schema.$ref) };
    const out = Array.isArray(schema) ? [] : {};
    for (const [k, v] of Object.entries(schema)) out[k] = v && typeof v === "object" ? resolve(v, depth + 1) : v;
    return out;
  };
  document.getElementById("title").textContent = (spec.info?.title ?? "API") + " " + (spec.info?.version ?? "");
  const groups = new Map();
  for (const [path, item] of Object.entries(spec.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const group = op.tags?.[0] ?? path.split("/").filter((s) => s && s !== "v1")[0] ?? "general";
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push({ path, method, op });
    }
  }
  main.replaceChildren();
  const toc = document.getElementById("toc");
  for (const [group, ops] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    toc.append(el("a", { href: "#" + group, textContent: group + " (" + ops.length + ")" }));
    main.append(el("h2", { id: group, textContent: group }));
    for (const { path, method, op } of ops) {
      const body = el("div", { className: "body" });
      if (op.description) body.append(el("p", { textContent: op.description }));
      if (op.operationId) body.append(el("p", { className: "muted", textContent: "operationId: " + op.operationId }));
      if (op.security?.length) body.append(el("p", { className: "muted", textContent: "Auth: " + op.security.map((s) => Object.keys(s).join(", ")).join(" or ") }));
      const params = op.parameters ?? [];
      if (params.length) {
        const rows = params.map((p) => el("tr", {}, el("td", {}, el("code", { textContent: p.name })), el("td", { textContent: p.in }), el("td", { textContent: p.required ? "required" : "optional" }), el("td", { textContent: p.description ?? JSON.stringify(resolve(p.schema)) })));
        body.append(el("h4", { textContent: "Parameters" }), el("table", {}, ...rows));
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        body.append(el("h4", { textContent: "Request body (" + type + ")" }), el("pre", { textContent: JSON.stringify(resolve(media.schema), null, 2) }));
      }
      const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
        const schema = Object.values(r.content ?? {})[0]?.schema;
        return el("tr", {}, el("td", {}, el("code", { textContent: status })), el("td", { textContent: r.description ?? "" }), el("td", {}, schema ? el("details", {}, el("summary", { textContent: Object.keys(r.content)[0] }), el("pre", { textContent: JSON.stringify(resolve(schema), null, 2) })) : ""));
      });
      body.append(el("h4", { textContent: "Responses" }), el("table", {}, ...responses));
      const summary = el("summary", {}, el("span", { className: "method " + method, textContent: method.toUpperCase() }), el("span", { className: "path", textContent: path }), el("span", { className: "muted", textContent: op.summary ?? "" }));
      main.append(el("details", { className: "op" }, summary, body));
    }
  }
})();
</script>
</body>
</html>
`;
