/**
 * The status page's timeline (a waterfall of the build, issue 18) and its failure at a glance.
 * Plain HTML and CSS, no script: a table whose rows are the build's segments (waiting,
 * queued, dispatched to a fleet, the runner's queue, running, retries with their reasons) and
 * each layer's phases (base pull, each step with its Dockerfile line, commit, push), every row
 * with its start and duration in text and a bar whose offset and width are its share of the
 * build's wall time. Cached layers say so and name the build that produced them; phases on the
 * critical path and the failing step are marked in words, not colour alone. Pure; escaped.
 */
import type { BuildSegment, BuildTimeline, LayerPhase } from "@kiln-build/protocol";
import type { ImageView } from "../images/view.ts";

/** What the timeline section is drawn from: the build's timeline and the image's layers. */
export type TimelineView = { timeline: BuildTimeline | null; image: ImageView };

const SEGMENT_LABEL: Record<BuildSegment["kind"], string> = {
  waiting: "waiting for layers",
  queued: "queued for a fleet slot",
  dispatching: "dispatching",
  runner_queue: "in the runner's queue",
  running: "running",
  retrying: "retrying",
};

/** Escapes text for HTML element content and attribute values (as render.ts). */
function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A duration as `850 ms`, `12.3 s` or `4 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** The timeline section, or "" when there is nothing to draw. */
export function renderTimeline({ timeline, image }: TimelineView): string {
  if (!timeline) return image.layers.every((l) => l.cached) ? cachedOnly(image) : "";
  const origin = timeline.createdAtMs;
  const wall = Math.max(1, timeline.wallMs);
  const bar = (start: number, duration: number, cls: string) => {
    const left = Math.min(100, ((start - origin) / wall) * 100);
    const width = Math.max(0.4, Math.min(100 - left, (duration / wall) * 100));
    return `<span class="tl-track" aria-hidden="true"><span class="tl-bar ${cls}" style="margin-left:${left.toFixed(2)}%;width:${width.toFixed(2)}%"></span></span>`;
  };
  const row = (label: string, detail: string, start: number, duration: number, cls: string, attrs = "") =>
    `<tr class="${cls}"${attrs}><th scope="row">${label}</th><td class="tl-detail">${detail}</td><td class="tl-num">+${formatDuration(start - origin)}</td><td class="tl-num">${formatDuration(duration)}</td><td class="tl-chart">${bar(start, duration, cls)}</td></tr>`;
  const rows: string[] = [];
  for (const s of timeline.segments) {
    const what = [
      s.attempt === null ? null : `attempt ${s.attempt}`,
      s.fleetId ? `fleet <code>${esc(s.fleetId)}</code>` : null,
      s.note ? esc(s.note) : null,
      s.endedAtMs === null ? "in progress" : null,
    ].filter((part) => part !== null);
    rows.push(row(esc(SEGMENT_LABEL[s.kind]), what.join(" · "), s.startedAtMs, s.durationMs, `tl-seg tl-${s.kind}`));
  }
  const byKey = new Map(timeline.layers.map((l) => [l.key, l]));
  const imageLayers = image.layers.length ? image.layers : timeline.layers.map((l) => ({ index: l.index, key: l.key, buildId: null }));
  for (const il of imageLayers) {
    const tl = byKey.get(il.key);
    const n = il.index + 1;
    if (!tl || tl.state === "cached") {
      const from = tl?.cachedFrom ?? ("buildId" in il ? il.buildId : null);
      rows.push(
        `<tr class="tl-layer tl-cached"><th scope="row">layer ${n}</th><td class="tl-detail" colspan="4"><strong>cached</strong>${from ? ` · built by build <code>${esc(from)}</code>` : ""}</td></tr>`,
      );
      continue;
    }
    rows.push(
      `<tr class="tl-layer"><th scope="row">layer ${n}</th><td class="tl-detail" colspan="4"><strong>${esc(tl.state)}</strong> <code title="${esc(tl.key)}">${esc(tl.key.slice(0, 12))}</code></td></tr>`,
    );
    for (const p of tl.phases) rows.push(phaseRow(p, n, timeline, row));
  }
  return `<section id="timeline" aria-labelledby="timeline-title">
<h2 id="timeline-title">Timeline</h2>
<p class="meta">Wall time ${formatDuration(timeline.wallMs)}. Rows marked <span class="tl-crit-mark">critical</span> are on the critical path: the chain of phases that decided when the build ended.</p>
<div class="tl-wrap" tabindex="0" role="region" aria-labelledby="timeline-title"><table class="tl">
<thead><tr><th scope="col">phase</th><th scope="col">detail</th><th scope="col">start</th><th scope="col">duration</th><th scope="col"><span class="visually-hidden">chart</span></th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table></div>
</section>`;
}

type RowFn = (label: string, detail: string, start: number, duration: number, cls: string, attrs?: string) => string;

function phaseRow(p: LayerPhase, layerNo: number, timeline: BuildTimeline, row: RowFn): string {
  const failing = p.outcome === "failed" && (p.kind === "step" || p.kind === "pull" || p.kind === "build");
  const name =
    p.kind === "step" || p.kind === "pull"
      ? `${p.kind === "pull" ? "base pull" : "step"}${p.step ? ` ${p.step}/${p.totalSteps}` : ""}`
      : p.kind;
  const detail = [
    p.line ? `<code>${esc(p.line)}</code>` : null,
    p.outcome === "ok" ? null : `<strong>${esc(p.outcome)}</strong>`,
    p.exitCode === null ? null : `exit code <code>${p.exitCode}</code>`,
    p.attempt > 1 ? `attempt ${p.attempt}` : null,
    p.critical ? `<span class="tl-crit-mark">critical</span>` : null,
  ].filter((part) => part !== null);
  const cls = `tl-phase tl-${p.kind}${p.critical ? " tl-critical" : ""}${failing ? " tl-failed" : ""}${p.outcome === "running" ? " tl-running" : ""}`;
  const end = p.endedAtMs === null ? Date.now() : p.endedAtMs;
  const attrs = failing && timeline.failedStep?.layerIndex === layerNo - 1 ? ` id="failing-step"` : "";
  return row(
    `<span class="visually-hidden">layer ${layerNo} </span>${esc(name)}`,
    detail.join(" · "),
    p.startedAtMs,
    end - p.startedAtMs,
    cls,
    attrs,
  );
}

// A fully cached image has no build of its own: each layer names the build that made it.
function cachedOnly(image: ImageView): string {
  const rows = image.layers.map(
    (l) => `<li>layer ${l.index + 1}: <strong>cached</strong>${l.buildId ? ` · built by build <code>${esc(l.buildId)}</code>` : ""}</li>`,
  );
  return `<section id="timeline" aria-labelledby="timeline-title"><h2 id="timeline-title">Timeline</h2><p class="meta">Every layer was cached: nothing was built for this image.</p><ul>${rows.join("")}</ul></section>`;
}

/**
 * A failed build at a glance, at the top of its page: the failing step (layer, number and
 * Dockerfile line) and its exit code, the log tail with the failing command's lines marked,
 * and the command that prints the whole log.
 */
export function renderFailureGlance({ timeline, image }: TimelineView): string {
  const failure = image.failure;
  if (!failure) return "";
  const step = timeline?.failedStep ?? null;
  const exitCode = step?.exitCode ?? failure.exitCode;
  const layerIndex = step?.layerIndex ?? failure.layerIndex;
  const line = step?.line ?? null;
  const where = [
    layerIndex === null ? null : `layer ${layerIndex + 1}`,
    step?.step ? `step ${step.step}` : null,
    exitCode === null ? null : `exit code <code>${exitCode}</code>`,
  ].filter((part) => part !== null);
  const marks = (text: string) => line !== null && (text.includes(line) || /building at STEP|exit status \d+/.test(text));
  const tail = failure.logTail.map((l) => (marks(l) ? `<mark>${esc(l)}</mark>\n` : `${esc(l)}\n`)).join("");
  return `<section class="glance" id="failure-glance" aria-labelledby="glance-title">
<h2 id="glance-title">Failed${where.length ? `: ${where.join(" · ")}` : ""}</h2>
<p><strong>${esc(failure.reason)}</strong>: ${esc(failure.message)}</p>
${line ? `<p>The failing step: <code class="failing-line">${esc(line)}</code>${step?.layerIndex !== undefined ? ` (<a href="#failing-step">in the timeline</a>)` : ""}</p>` : ""}
${tail ? `<pre class="log tail" tabindex="0" aria-label="last lines of the log">${tail}</pre>` : ""}
<p class="meta">The whole log: <code>kiln logs ${esc(image.id)}</code></p>
</section>`;
}

/** The timeline's styles, appended to the page's. */
export const TIMELINE_STYLE = `
.tl-wrap{overflow-x:auto;position:relative}.tl{table-layout:auto}.tl th[scope=row]{font-weight:500;white-space:nowrap}
.tl-detail{overflow-wrap:anywhere}.tl-detail code{white-space:pre-wrap;overflow-wrap:anywhere}.tl-num{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums}
.tl-chart{width:30%;min-width:6rem}.tl-track{display:block;position:relative;height:.8rem;background:#f6f8fa;border-radius:2px}
.tl-bar{display:block;height:100%;background:#8c959f;border-radius:2px}.tl-running .tl-bar,.tl-running{background-color:transparent}
.tl-seg .tl-bar{background:#6e7781}.tl-step .tl-bar,.tl-pull .tl-bar{background:#0969da}.tl-push .tl-bar{background:#8250df}.tl-commit .tl-bar{background:#1a7f37}
.tl-critical .tl-bar{outline:2px solid #9a6700}.tl-failed .tl-bar{background:#cf222e}.tl-failed{background:#ffebe9}
.tl-layer th,.tl-layer td{background:#f6f8fa;border-top:2px solid #d1d9e0}.tl-crit-mark{font-size:.8em;border:1px solid #9a6700;color:#7a5200;border-radius:3px;padding:0 .25rem}
.glance{background:#ffebe9;border:1px solid #ff818266;padding:.5rem .75rem;border-radius:6px;margin-top:1rem}.glance h2{margin:.25rem 0}
.glance mark{background:#ffd8d3;color:#82071e;font-weight:600}.failing-line{background:#fff;padding:0 .25rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;
