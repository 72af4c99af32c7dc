/**
 * The status page's log by layer: the lines the page shows, grouped into one collapsible
 * `<details>` per layer (plus one for Kiln's own lines), in order within each group. The layer
 * building now (or the one that failed) is open; the interleaved raw order stays in the page's
 * raw log below it. Pure; escaped.
 */
import type { ImageView } from "../images/view.ts";

/** A log line as the page shows it (render.ts `PageLogLine`): its layer (1-based) or null for Kiln's own. */
type PageLogLine = { layer: number | null; stream: string; text: string };

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** The layer (1-based) to show open: the failed one, else the one building, else none. */
export function openLayer(image: ImageView): number | null {
  if (image.failure?.layerIndex != null) return image.failure.layerIndex + 1;
  const building = image.layers.find((l) => l.status === "building" || l.status === "queued");
  return building && image.status === "building" ? building.index + 1 : null;
}

/** The grouped log section, or "" without lines. */
export function renderLogGroups(lines: readonly PageLogLine[], image: ImageView): string {
  if (lines.length === 0) return "";
  const groups = new Map<number | null, PageLogLine[]>();
  for (const line of lines) {
    const group = groups.get(line.layer) ?? [];
    group.push(line);
    groups.set(line.layer, group);
  }
  const open = openLayer(image);
  const order = [...groups.keys()].sort((a, b) => (a ?? 0) - (b ?? 0));
  const sections = order.map((layer) => {
    const group = groups.get(layer)!;
    const status = layer === null ? null : image.layers[layer - 1]?.status;
    const title = layer === null ? "Kiln" : `Layer ${layer}${status ? ` · ${status}` : ""}`;
    const body = group.map((l) => `<span class="${l.stream}">${esc(l.text)}\n</span>`).join("");
    return `<details class="log-group" data-layer="${layer ?? "kiln"}"${layer === open ? " open" : ""}><summary>${esc(title)} <span class="meta">(${group.length} line${group.length === 1 ? "" : "s"})</span></summary><pre class="log" tabindex="0" aria-label="${esc(title)} log">${body}</pre></details>`;
  });
  return `<section id="log-by-layer" aria-labelledby="log-by-layer-title">
<h2 id="log-by-layer-title">Log by layer</h2>
${sections.join("\n")}
</section>`;
}

/** The grouped log's styles, appended to the page's. */
export const LOG_GROUPS_STYLE = `
.log-group{margin:.35rem 0}.log-group summary{cursor:pointer;font-weight:600}.log-group pre{margin:.35rem 0 0}
`;
