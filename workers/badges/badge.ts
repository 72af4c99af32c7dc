/**
 * Build-status badges, pure: which status an image shows, its colour, the shields.io endpoint
 * JSON, ETags and `If-None-Match` matching. SVG rendering (badge-maker) is in `render.ts`.
 */
import type { BuildStatusColumn } from "../db/schema/builds.ts";

/** What a badge says. */
export type BadgeStatus = "queued" | "building" | "passing" | "failed" | "timeout" | "cancelled";
/** The two representations of a badge. */
export type BadgeFormat = "svg" | "json";

/** The left-hand text of every badge. */
export const BADGE_LABEL = "build";

/**
 * Named colours shields.io and badge-maker both understand. Bump `BADGE_VERSION` whenever
 * these or the renderer change, so cached copies revalidate to the new bytes.
 */
export const BADGE_COLORS: Record<BadgeStatus, string> = {
  queued: "lightgrey",
  building: "blue",
  passing: "brightgreen",
  failed: "red",
  timeout: "orange",
  cancelled: "lightgrey",
};
const BADGE_VERSION = "1";

/**
 * The status of an image from D1 alone: a fully cached chain has no build and passes;
 * otherwise the build's status decides. Waiting on a prefix, on a fleet or on a dispatch
 * is `queued`; running or between retries is `building`.
 */
export function badgeStatus(buildId: string | null, buildStatus: BuildStatusColumn | string | null): BadgeStatus {
  if (buildId === null) return "passing";
  switch (buildStatus) {
    case "succeeded":
      return "passing";
    case "failed":
      return "failed";
    case "timeout":
      return "timeout";
    case "cancelled":
      return "cancelled";
    case "running":
    case "retrying":
      return "building";
    default:
      // waiting, queued, dispatching, or a build row not yet projected into D1.
      return "queued";
  }
}

/** The shields.io endpoint body (schema v1): https://shields.io/badges/endpoint-badge */
export function endpointJson(status: BadgeStatus): { schemaVersion: 1; label: string; message: string; color: string } {
  return { schemaVersion: 1, label: BADGE_LABEL, message: status, color: BADGE_COLORS[status] };
}

/**
 * A strong ETag. The bytes depend only on format, status and the renderer version, so the
 * tag is computed from those without rendering: a 304 costs one D1 query and nothing else.
 */
export function badgeEtag(format: BadgeFormat, status: BadgeStatus): string {
  return `"badge-v${BADGE_VERSION}-${format}-${status}"`;
}

/** Whether `If-None-Match` matches `etag` (RFC 9110 weak comparison; `*` matches any). */
export function ifNoneMatchHits(header: string | undefined | null, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  const wanted = opaque(etag);
  return header.split(",").some((tag) => opaque(tag) === wanted);
}

/** Splits `<tag>.svg` / `<tag>.json` into tag and format, or null. */
export function parseBadgeFile(file: string): { tag: string; format: BadgeFormat } | null {
  const match = /^(.+)\.(svg|json)$/.exec(file);
  return match ? { tag: match[1]!, format: match[2] as BadgeFormat } : null;
}
