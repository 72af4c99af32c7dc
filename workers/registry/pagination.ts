/**
 * Pure pagination of the tags list (`GET /v2/<name>/tags/list?n=&last=`): lexical order,
 * `n` results after `last`, and an RFC 5988 `Link` header when more remain.
 */

/** Most tags one page returns, whatever `n` asks for. */
export const MAX_PAGE = 1000;

/** A validated page request. */
export type PageRequest = { limit: number; last: string | null };

/** Parses `n` and `last`; `n` absent means the maximum page, `n=0` an empty page. Null when `n` is malformed. */
export function parsePage(n: string | undefined, last: string | undefined): PageRequest | null {
  if (n !== undefined && !/^\d{1,9}$/.test(n)) return null;
  const limit = n === undefined ? MAX_PAGE : Math.min(Number(n), MAX_PAGE);
  return { limit, last: last || null };
}

/**
 * Given up to `limit + 1` names fetched after `last` in order, the page to return and the
 * `Link` header for the next one (null on the last page).
 */
export function pageOf(names: readonly string[], request: PageRequest, path: string): { names: string[]; link: string | null } {
  const page = names.slice(0, request.limit);
  if (names.length <= request.limit || page.length === 0) return { names: page, link: null };
  const next = `${path}?n=${request.limit}&last=${encodeURIComponent(page[page.length - 1]!)}`;
  return { names: page, link: `<${next}>; rel="next"` };
}
