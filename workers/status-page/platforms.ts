/**
 * The status page's "Platforms" section (decision 0023): when the image is one platform of a
 * multi-platform image, the index's status and digest and each platform's status and manifest
 * digest. Image ids of the other platforms are left out: the page is public when a tag of this
 * image is, and those images are not. Pure and escaped like the rest of the page.
 */
import type { ImageIndexView } from "@kiln-build/protocol";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

// render.ts's escapeHtml, repeated: render.ts imports this module, and importing it back would be a cycle.
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** The section, or nothing when the image is not part of a multi-platform image. */
export function platformsSection(index: ImageIndexView | null | undefined, imageId: string): string {
  if (!index) return "";
  const digest = index.digest
    ? ` · index <code data-copy="${escapeHtml(index.digest)}" data-copy-label="index digest">${escapeHtml(index.digest)}</code>`
    : "";
  const rows = index.platforms.map(
    (p) =>
      `<tr><td>${escapeHtml(p.platform)}${p.imageId === imageId ? " (this image)" : ""}</td><td class="status-${escapeHtml(p.status)}">${escapeHtml(p.status)}</td><td style="overflow-wrap:anywhere">${p.digest ? `<code>${escapeHtml(p.digest)}</code>` : "-"}</td></tr>`,
  );
  return `<section id="platforms">
<h2>Platforms</h2>
<p class="meta">multi-platform image: ${escapeHtml(index.status)}${digest}</p>
<table>
<thead><tr><th>platform</th><th>status</th><th>digest</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
</section>`;
}
