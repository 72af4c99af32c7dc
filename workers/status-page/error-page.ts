/**
 * The HTML face of the one error mapping (workers/errors.ts): what a browser gets instead of
 * `{"error":{...}}` when it asks for HTML. Pure: status, code and message in, page out. The
 * message is the same bounded text the JSON body carries; nothing else about the request is
 * shown, so the page reveals no more than the JSON would.
 */

import { BASE_STYLE, pageContentSecurityPolicy } from "./page-style.ts";
import { escapeHtml } from "./render.ts";

const TITLES: Record<number, string> = {
  400: "Bad request",
  401: "Sign-in required",
  403: "Not allowed",
  404: "Not found",
  405: "Method not allowed",
  409: "Conflict",
  410: "Gone",
  413: "Too large",
  429: "Too many requests",
  500: "Something went wrong",
  503: "Unavailable",
};

/** What an error page says. */
export type ErrorPage = { status: number; code: string; message: string; requestId?: string | undefined };

/** The page's HTML. */
export function renderErrorPage(error: ErrorPage): string {
  const title = TITLES[error.status] ?? "Error";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${error.status} ${escapeHtml(title)} · Kiln</title>
<style>${BASE_STYLE}</style>
</head>
<body>
<main>
<h1>${error.status} · ${escapeHtml(title)}</h1>
<p>${escapeHtml(error.message)}</p>
<p class="meta">code <code>${escapeHtml(error.code)}</code>${error.requestId ? ` · request <code>${escapeHtml(error.requestId)}</code>` : ""}</p>
</main>
</body>
</html>`;
}

/** Headers of an error page (beside the error's own, such as Retry-After). */
export async function errorPageHeaders(page: string): Promise<Record<string, string>> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": await pageContentSecurityPolicy(page),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
  };
}

/**
 * Whether a request prefers HTML to JSON (pure): `text/html` must be listed with a higher
 * quality than `application/json` gets (from itself, `application/*` or `*\/*`). Browsers
 * navigating send `text/html,...,*\/*;q=0.8`; fetch, curl and the SDK do not.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(",").map((part) => {
    const [type = "", ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const quality = q === undefined ? 1 : Number(q.slice(2));
    return { type: type.trim(), quality: Number.isFinite(quality) ? quality : 0 };
  });
  const qualityOf = (candidates: string[]) => {
    for (const c of candidates) {
      const found = ranges.find((r) => r.type === c);
      if (found) return found.quality;
    }
    return 0;
  };
  const html = qualityOf(["text/html"]);
  const json = qualityOf(["application/json", "application/*", "*/*"]);
  return html > 0 && html > json;
}
