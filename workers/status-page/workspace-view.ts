/**
 * The workspace view (`GET /w/:workspace`, decision 0021): a workspace's recent images with
 * status, build duration, tags and the token that submitted each, a filter form (status, tag,
 * time) that works without JavaScript, and a link to the next, older page. Pure: data in, HTML
 * string out; everything user-controlled is escaped.
 */
import type { RecentImage } from "../images/recent.ts";
import type { ImageStatus } from "../images/view.ts";
import { BASE_STYLE, CARD_TABLE_STYLE, COPY_SCRIPT } from "./page-style.ts";
import { escapeHtml } from "./render.ts";

/** The statuses the filter offers. */
export const VIEW_STATUSES: readonly ImageStatus[] = ["queued", "building", "succeeded", "failed", "cancelled", "timeout"];
/** The time windows the filter offers, in hours (`all` is no window). */
export const VIEW_WINDOWS = { "1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30 } as const;
/** One time window. */
export type ViewWindow = keyof typeof VIEW_WINDOWS | "all";

/** Everything the view shows. */
export type WorkspaceViewData = {
  workspace: string;
  filters: { status: ImageStatus | null; tag: string; since: ViewWindow };
  images: RecentImage[];
  /** Query string of the next (older) page, or null on the last. */
  olderQuery: string | null;
  /** Whether this page continues an earlier one (shows a link back to the newest). */
  paged: boolean;
};

/** Renders the page. */
export function renderWorkspaceView(data: WorkspaceViewData): string {
  const base = `/w/${encodeURIComponent(data.workspace)}`;
  const rows = data.images.map((image) => imageRow(base, image)).join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.workspace)} · builds · Kiln</title>
<style>${BASE_STYLE}${CARD_TABLE_STYLE}${VIEW_STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(data.workspace)}</h1>
<p class="meta">Recent images and builds of this workspace, newest first. This page is private to your browser session.</p>
</header>
<main>
${filterForm(base, data.filters)}
<h2 id="images-heading">Images</h2>
${
  data.images.length
    ? `<table class="cards" aria-labelledby="images-heading">
<thead><tr><th scope="col">image</th><th scope="col">status</th><th scope="col">duration</th><th scope="col">tags</th><th scope="col">submitted by</th><th scope="col">created</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
    : `<p id="empty">No images match${data.paged ? " on this page" : ""}.</p>`
}
<nav aria-label="pages" class="pages">
${data.paged ? `<a href="${escapeHtml(`${base}${filterQuery(data.filters)}`)}">Newest</a>` : ""}
${data.olderQuery ? `<a href="${escapeHtml(`${base}${data.olderQuery}`)}" rel="next">Older</a>` : ""}
</nav>
</main>
<script>${COPY_SCRIPT}</script>
</body>
</html>`;
}

/** `?status=...&tag=...&since=...` for the non-default filters (empty when none). */
export function filterQuery(filters: WorkspaceViewData["filters"], extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  if (filters.status) params.set("status", filters.status);
  if (filters.tag) params.set("tag", filters.tag);
  if (filters.since !== "all") params.set("since", filters.since);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const text = params.toString();
  return text ? `?${text}` : "";
}

function filterForm(base: string, filters: WorkspaceViewData["filters"]): string {
  const option = (value: string, label: string, selected: boolean) =>
    `<option value="${escapeHtml(value)}"${selected ? " selected" : ""}>${escapeHtml(label)}</option>`;
  const windows: [ViewWindow, string][] = [
    ["all", "any time"],
    ["1h", "last hour"],
    ["24h", "last 24 hours"],
    ["7d", "last 7 days"],
    ["30d", "last 30 days"],
  ];
  return `<form method="get" action="${escapeHtml(base)}" class="filters" role="search" aria-label="filter images">
<div><label for="f-status">Status</label>
<select id="f-status" name="status">${option("", "any", filters.status === null)}${VIEW_STATUSES.map((s) => option(s, s, filters.status === s)).join("")}</select></div>
<div><label for="f-tag">Tag contains</label>
<input id="f-tag" name="tag" type="search" maxlength="128" value="${escapeHtml(filters.tag)}"></div>
<div><label for="f-since">Created</label>
<select id="f-since" name="since">${windows.map(([v, l]) => option(v, l, filters.since === v)).join("")}</select></div>
<div><button type="submit">Filter</button></div>
</form>`;
}

function imageRow(base: string, image: RecentImage): string {
  const href = `${base}/images/${encodeURIComponent(image.id)}`;
  const tags = image.tags.length
    ? image.tags.map((t) => `<code>${escapeHtml(t.name)}</code>${t.public ? ' <span class="pub">public</span>' : ""}`).join(", ")
    : "";
  const by = image.submittedBy ? escapeHtml(image.submittedBy.name ?? image.submittedBy.id) : '<span class="meta">unknown</span>';
  const failure = image.failureReason ? ` <span class="meta">(${escapeHtml(image.failureReason)})</span>` : "";
  return `<tr>
<td data-label="image" class="wide"><a href="${escapeHtml(href)}"><code>${escapeHtml(image.id)}</code></a><span data-copy="${escapeHtml(image.id)}" data-copy-label="image id ${escapeHtml(image.id)}"></span><br><span class="meta">${image.layerCount} layer${image.layerCount === 1 ? "" : "s"}</span></td>
<td data-label="status"><span class="status status-${escapeHtml(image.status)}">${escapeHtml(image.status)}</span>${failure}</td>
<td data-label="duration">${image.durationMs === null ? "cached" : formatDuration(image.durationMs)}</td>
<td data-label="tags" class="wrap">${tags}</td>
<td data-label="submitted by">${by}</td>
<td data-label="created"><time datetime="${image.createdAt.toISOString()}">${image.createdAt.toISOString().replace("T", " ").slice(0, 19)}</time></td>
</tr>`;
}

/** A duration as `850 ms`, `12.3 s`, `4 min 05 s` or `2 h 03 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

const VIEW_STYLE = `
.filters{display:flex;flex-wrap:wrap;gap:.75rem 1rem;align-items:flex-end;margin:1rem 0}
.filters label{display:block;font-weight:600;font-size:.9rem}
.filters select,.filters input,.filters button{font:inherit;padding:.25rem .4rem;max-width:100%}
.pub{font-size:.8rem;color:#1a7f37;font-weight:600}
.pages{display:flex;gap:1rem;margin:1rem 0}
`;
