/**
 * The status page's "Pushed to" section (decision 0019): each external push target of the
 * image with its status, the digest it got there and, for a failed one, the registry's
 * message. Pure and escaped like the rest of the page. Long references, digests and messages
 * wrap inside their cells (`overflow-wrap:anywhere`), so a narrow screen never scrolls sideways.
 */
import type { PushView } from "@kiln-build/protocol";

const TARGET_CELL = "width:100%;overflow-wrap:anywhere";
const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

// render.ts's escapeHtml, repeated: render.ts imports this module, and importing it back would be a cycle.
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** The section, or nothing when the image was pushed nowhere. */
export function pushesSection(pushes: readonly PushView[] | undefined): string {
  if (!pushes || pushes.length === 0) return "";
  return `<section id="pushes">
<h2>Pushed to</h2>
<table>
<thead><tr><th>status</th><th>target</th></tr></thead>
<tbody>
${pushes.map(pushRow).join("\n")}
</tbody>
</table>
</section>`;
}

// Two columns, the status first: on a narrow screen the target cell takes what is left and its
// reference, digest and message wrap anywhere (a digest is one 71-character word).
function pushRow(push: PushView): string {
  const detail =
    push.status === "failed"
      ? `<br><span class="push-error">${escapeHtml(push.message ?? "not pushed")}</span>`
      : push.digest
        ? `<br><code>${escapeHtml(push.digest)}</code>`
        : "";
  return `<tr><td class="status-${escapeHtml(push.status)}">${escapeHtml(push.status)}</td><td style="${TARGET_CELL}"><code>${escapeHtml(push.reference)}</code>${detail}</td></tr>`;
}
