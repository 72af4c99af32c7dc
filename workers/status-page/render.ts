/**
 * The image status page: plain server-rendered HTML, readable without JavaScript (layers,
 * digests, timings, badge Markdown, the log so far; a running build refreshes itself with a
 * meta refresh). With JavaScript, a small inline script long-polls the log and appends new
 * lines instead of reloading. Pure: data in, HTML string out; everything user-controlled is
 * escaped.
 */
import type { BuildTimeline, ImageIndexView, PushView } from "@kiln-build/protocol";
import type { ImageView } from "../images/view.ts";
import { LOG_GROUPS_STYLE, renderLogGroups } from "./log-groups.ts";
import { CARD_TABLE_STYLE, COPY_SCRIPT } from "./page-style.ts";
import { platformsSection } from "./platforms.ts";
import { pushesSection } from "./pushes.ts";
import { renderFailureGlance, renderTimeline, TIMELINE_STYLE } from "./timeline.ts";

/** One rendered log line, with the layer it came from (1-based) or null for system lines. */
export type PageLogLine = { layer: number | null; stream: "stdout" | "stderr" | "system"; text: string };

/** Everything the page shows. */
export type StatusPageData = {
  image: ImageView;
  /** The tag the page was reached by, if any. */
  tag: { workspace: string; name: string } | null;
  /** The OCI reference the tag is published as in the built-in registry (`NAME:TAG` tags), if any. */
  pullReference?: string | null;
  /** Absolute URL of the badge and of this page, for the Markdown snippet. */
  badgeUrl: string | null;
  pageUrl: string;
  /** The workspace view, on a session's private page (decision 0021). */
  workspaceUrl?: string | null;
  /** Built-at time per layer key (epoch ms), when known. */
  builtAt: ReadonlyMap<string, number>;
  log: PageLogLine[];
  /** Where the script polls for more log chunks, and the cursor to start from. */
  logPollUrl: string | null;
  logCursor: number;
  /** The timeline of the image's build (timeline.ts), when it has one. */
  timeline?: BuildTimeline | null;
  /** The image's external push targets (decision 0019), if it was pushed. */
  pushes?: readonly PushView[] | undefined;
  /** The multi-platform image this image is a platform of (decision 0023), if any. */
  index?: ImageIndexView | null | undefined;
};

const FINAL = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const REFRESH_SECONDS = 5;

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Renders the full page. */
export function renderStatusPage(data: StatusPageData): string {
  const { image } = data;
  const running = !FINAL.has(image.status);
  const title = data.tag ? `${data.tag.workspace}/${data.tag.name}` : image.id;
  const markdown = data.badgeUrl ? `[![kiln: ${title}](${data.badgeUrl})](${data.pageUrl})` : null;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${running ? `<noscript><meta http-equiv="refresh" content="${REFRESH_SECONDS}"></noscript>` : ""}
<title>${escapeHtml(title)} · ${escapeHtml(image.status)} · Kiln</title>
<style>${STYLE}${CARD_TABLE_STYLE}${TIMELINE_STYLE}${LOG_GROUPS_STYLE}</style>
</head>
<body>
<header>
  ${data.workspaceUrl ? `<nav aria-label="workspace"><a href="${escapeHtml(data.workspaceUrl)}">All builds of this workspace</a></nav>` : ""}
  <h1>${escapeHtml(title)}</h1>
  <p class="status status-${escapeHtml(image.status)}" id="status">${escapeHtml(image.status)}</p>
  <p class="meta">image <code data-copy="${escapeHtml(image.id)}" data-copy-label="image id">${escapeHtml(image.id)}</code>${image.buildId ? ` · build <code>${escapeHtml(image.buildId)}</code>` : ""} · created ${escapeHtml(image.createdAt)}</p>
  ${data.pullReference ? `<p class="meta">pull <code data-copy="${escapeHtml(data.pullReference)}" data-copy-label="pull reference">${escapeHtml(data.pullReference)}</code></p>` : ""}
  ${image.failure ? (data.timeline ? renderFailureGlance({ timeline: data.timeline, image }) : failureBlock(image.failure)) : ""}
</header>
${renderTimeline({ timeline: data.timeline ?? null, image })}
<section>
<h2>Layers</h2>
<table class="cards" id="layers">
<thead><tr><th scope="col">#</th><th scope="col">status</th><th scope="col">digest</th><th scope="col">size</th><th scope="col">built</th><th scope="col">reference</th></tr></thead>
<tbody>
${image.layers.map((l) => layerRow(l, data.builtAt.get(l.key))).join("\n")}
</tbody>
</table>
</section>
${platformsSection(data.index, image.id)}
${pushesSection(data.pushes)}
${markdown ? `<section><h2>Badge</h2><p><img src="${escapeHtml(data.badgeUrl!)}" alt="build status"></p><pre class="snippet">${escapeHtml(markdown)}</pre></section>` : ""}
${renderLogGroups(data.log, image)}
<section>
<h2>Log</h2>
<pre id="log" class="log" tabindex="0" aria-label="build log">${data.log.map(logLine).join("")}</pre>
${running ? `<p class="meta" id="live">Build in progress; this page updates itself.</p>` : ""}
</section>
${running && data.logPollUrl ? liveScript(data.logPollUrl, data.logCursor) : ""}
<script>${COPY_SCRIPT}</script>
</body>
</html>`;
}

/** The failure: reason and message, then the failed layer and exit code where known, then the log tail. */
function failureBlock(failure: NonNullable<ImageView["failure"]>): string {
  const where = [
    failure.layerKey === null
      ? null
      : `layer ${failure.layerIndex === null ? "" : `${failure.layerIndex + 1} `}<code title="${escapeHtml(failure.layerKey)}">${escapeHtml(failure.layerKey.slice(0, 12))}</code>`,
    failure.exitCode === null ? null : `exit code <code>${failure.exitCode}</code>`,
  ].filter((part) => part !== null);
  return `<div class="failure" id="failure">
  <p><strong>${escapeHtml(failure.reason)}</strong>: ${escapeHtml(failure.message)}</p>
  ${where.length ? `<p class="meta">${where.join(" · ")}</p>` : ""}
  ${failure.logTail.length ? `<pre class="log tail" tabindex="0" aria-label="last lines of output">${failure.logTail.map((line) => `${escapeHtml(line)}\n`).join("")}</pre>` : ""}
</div>`;
}

function layerRow(layer: ImageView["layers"][number], builtAt: number | undefined): string {
  const size = layer.sizeBytes === null ? "" : formatBytes(layer.sizeBytes);
  const when = builtAt === undefined ? "" : new Date(builtAt).toISOString().replace("T", " ").slice(0, 19);
  // The digest is shortened (the full one is in the reference); the reference wraps, with a copy button.
  const digest = layer.digest ? `<code title="${escapeHtml(layer.digest)}">${escapeHtml(layer.digest.slice(0, 19))}</code>` : "";
  const reference = layer.reference
    ? `<code data-copy="${escapeHtml(layer.reference)}" data-copy-label="layer ${layer.index + 1} reference">${escapeHtml(layer.reference)}</code>`
    : "";
  return `<tr><td data-label="layer">${layer.index + 1}</td><td data-label="status" class="status-${escapeHtml(layer.status)}">${escapeHtml(layer.status)}${layer.cached ? " (cached)" : ""}</td><td data-label="digest">${digest}</td><td data-label="size">${size}</td><td data-label="built">${when}</td><td data-label="reference" class="wide">${reference}</td></tr>`;
}

function logLine(line: PageLogLine): string {
  const prefix = line.layer === null ? "[kiln]" : `[${line.layer}]`;
  return `<span class="${line.stream}">${escapeHtml(prefix)} ${escapeHtml(line.text)}\n</span>`;
}

/** Bytes as B, KiB, MiB or GiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function liveScript(pollUrl: string, cursor: number): string {
  // JSON.stringify + "<" escaping keeps the URL inert inside the script element.
  const url = JSON.stringify(pollUrl).replace(/</g, "\\u003c");
  return `<script>
(async () => {
  const log = document.getElementById("log");
  let cursor = ${cursor};
  for (;;) {
    let page;
    try {
      const r = await fetch(${url} + "?cursor=" + cursor + "&waitSeconds=20");
      if (!r.ok) throw new Error(String(r.status));
      page = await r.json();
    } catch { await new Promise((r) => setTimeout(r, 3000)); continue; }
    for (const line of page.lines) {
      const span = document.createElement("span");
      span.className = line.stream;
      span.textContent = (line.layer === null ? "[kiln]" : "[" + line.layer + "]") + " " + line.text + "\\n";
      log.appendChild(span);
    }
    cursor = page.cursor;
    if (page.done) { location.reload(); return; }
  }
})();
</script>`;
}

const STYLE = `
*,*::before,*::after{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1f2328;overflow-wrap:break-word}
a{color:#0550ae}button.copy{font:12px system-ui,sans-serif;margin-left:.4rem;padding:.05rem .45rem;border:1px solid #afb8c1;border-radius:4px;background:#f6f8fa;color:#1f2328;cursor:pointer}
h1{margin:0 0 .25rem;font-size:1.6rem}h2{font-size:1.1rem;margin-top:2rem}
.meta{color:#59636e;margin:.25rem 0}code{font:13px ui-monospace,monospace}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;font-weight:600;margin:.25rem 0}
.status-succeeded{background:#1a7f37}.status-failed,.status-timeout,.status-cancelled{background:#cf222e}
.status-building{background:#0969da}.status-queued{background:#8a5c00}
td.status-succeeded,td.status-failed,td.status-building,td.status-queued,td.status-timeout,td.status-cancelled{background:none;color:inherit;font-weight:600}
.failure{background:#ffebe9;border:1px solid #ff818266;padding:.5rem .75rem;border-radius:6px}.failure p{margin:.25rem 0}.failure .tail{background:#fff;max-height:20rem}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow:auto;max-width:100%}
.log{max-height:32rem;font:12px/1.45 ui-monospace,monospace}.log .stderr{color:#9a3412}.log .system{color:#59636e}
.snippet{white-space:pre-wrap;word-break:break-all}
`;
