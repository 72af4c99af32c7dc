/**
 * SVG rendering with badge-maker (the shields.io renderer, so badges look like every other
 * badge in a README). Imported lazily: its font-width tables are ~900 KB of JSON, and parsing
 * them at Worker start-up would slow every cold start, not only badge requests
 * (docs/decisions/0009-badges.md). A badge depends only on its status, so each of the six
 * SVGs is rendered once per isolate.
 */
import { BADGE_COLORS, BADGE_LABEL, type BadgeStatus } from "./badge.ts";

const rendered = new Map<BadgeStatus, Promise<string>>();

/** The SVG for `status` (flat style, label "build"). */
export function renderBadgeSvg(status: BadgeStatus): Promise<string> {
  let svg = rendered.get(status);
  if (!svg) {
    svg = import("badge-maker").then(({ makeBadge }) =>
      makeBadge({ label: BADGE_LABEL, message: status, color: BADGE_COLORS[status], style: "flat" }),
    );
    // A failed import must not poison the cache for the isolate's lifetime.
    svg.catch(() => rendered.delete(status));
    rendered.set(status, svg);
  }
  return svg;
}
