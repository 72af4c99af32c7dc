/**
 * The status page of a multi-platform image (decision 0023): the index's one status and digest,
 * its pull reference and Kiln tags, each platform with its status, manifest digest and a link to
 * that platform's own image page (layers, timeline, log), and the external registries the index
 * was pushed to. Plain server-rendered HTML like the image page: readable without JavaScript,
 * refreshing itself (meta refresh) while a platform builds or a push is pending, tables that
 * become cards on narrow screens. Pure: data in, HTML out; everything is escaped.
 */
import type { ImageIndexView } from "@kiln-build/protocol";
import { BASE_STYLE, CARD_TABLE_STYLE, COPY_SCRIPT } from "./page-style.ts";
import { pushesSection } from "./pushes.ts";
import { escapeHtml } from "./render.ts";

/** Everything the index page shows. */
export type IndexPageData = {
  index: ImageIndexView;
  /** The public tag the page was reached by (`<workspace>/<NAME:TAG>`), or null. */
  title: string | null;
  /** The OCI reference of the tag the page was reached by, in the built-in registry, if any. */
  pullReference: string | null;
  /** The page of platform image `imageId` (public or the session's), or null when it has none. */
  platformPageUrl: (imageId: string) => string | null;
  /** The workspace view, on a session's page (decision 0021). */
  workspaceUrl: string | null;
};

const FINAL = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const REFRESH_SECONDS = 5;
const STYLE = `
.platform-link{white-space:nowrap}
td.status-succeeded,td.status-failed,td.status-building,td.status-queued,td.status-timeout,td.status-cancelled,td.status-pending{background:none;color:inherit;font-weight:600}
.push-error{color:#a40e26}
.failure{background:#ffebe9;border:1px solid #ff818266;padding:.5rem .75rem;border-radius:6px}
`;

/** Whether the page should keep refreshing: a platform still builds, or a push target is pending. */
export function indexPageRunning(index: ImageIndexView): boolean {
  return !FINAL.has(index.status) || (index.status === "succeeded" && (index.pushes ?? []).some((p) => p.status === "pending"));
}

/** Renders the full page. */
export function renderIndexPage(data: IndexPageData): string {
  const { index } = data;
  const title = data.title ?? index.id;
  const running = indexPageRunning(index);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${running ? `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : ""}
<title>${escapeHtml(title)} · ${escapeHtml(index.status)} · Kiln</title>
<style>${BASE_STYLE}${CARD_TABLE_STYLE}${STYLE}</style>
</head>
<body>
<header>
  ${data.workspaceUrl ? `<nav aria-label="workspace"><a href="${escapeHtml(data.workspaceUrl)}">All builds of this workspace</a></nav>` : ""}
  <h1>${escapeHtml(title)}</h1>
  <p class="status status-${escapeHtml(index.status)}" id="status">${escapeHtml(index.status)}</p>
  <p class="meta">multi-platform image <code data-copy="${escapeHtml(index.id)}" data-copy-label="multi-platform image id">${escapeHtml(index.id)}</code> · created ${escapeHtml(index.createdAt)}</p>
  ${index.digest ? `<p class="meta">index digest <code data-copy="${escapeHtml(index.digest)}" data-copy-label="index digest" style="overflow-wrap:anywhere">${escapeHtml(index.digest)}</code></p>` : ""}
  ${data.pullReference ? `<p class="meta">pull <code data-copy="${escapeHtml(data.pullReference)}" data-copy-label="pull reference">${escapeHtml(data.pullReference)}</code></p>` : ""}
  ${index.message ? `<div class="failure" id="failure"><p>${escapeHtml(index.message)}</p></div>` : ""}
  ${running ? `<p class="meta" id="live">In progress; this page refreshes every ${REFRESH_SECONDS} seconds.</p>` : ""}
</header>
<main>
<section id="platforms">
<h2>Platforms</h2>
<table class="cards">
<thead><tr><th scope="col">platform</th><th scope="col">status</th><th scope="col">digest</th><th scope="col">image</th></tr></thead>
<tbody>
${index.platforms.map((p) => platformRow(p, data.platformPageUrl(p.imageId))).join("\n")}
</tbody>
</table>
</section>
${tagsSection(index)}
${pushesSection(index.pushes)}
</main>
<script>${COPY_SCRIPT}</script>
</body>
</html>`;
}

function platformRow(p: ImageIndexView["platforms"][number], pageUrl: string | null): string {
  const digest = p.digest ? `<code>${escapeHtml(p.digest)}</code>` : "-";
  const link = pageUrl
    ? `<a class="platform-link" href="${escapeHtml(pageUrl)}">${escapeHtml(p.platform)} image page</a>`
    : `<code>${escapeHtml(p.imageId)}</code>`;
  return `<tr><td data-label="platform">${escapeHtml(p.platform)}</td><td data-label="status" class="status-${escapeHtml(p.status)}">${escapeHtml(p.status)}</td><td data-label="digest" class="wide">${digest}</td><td data-label="image">${link}</td></tr>`;
}

function tagsSection(index: ImageIndexView): string {
  if (!index.tags || index.tags.length === 0) return "";
  const items = index.tags.map(
    (t) =>
      `<li><code>${escapeHtml(t.name)}</code>${t.reference ? ` · <code style="overflow-wrap:anywhere">${escapeHtml(t.reference)}</code>` : ""}</li>`,
  );
  return `<section id="tags">
<h2>Tags</h2>
<ul>
${items.join("\n")}
</ul>
</section>`;
}
