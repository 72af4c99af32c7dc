/**
 * What every Kiln HTML page shares (the image page, the workspace view, error pages): the
 * base style, the responsive table style (rows become labelled cards on narrow screens, so no
 * page scrolls sideways at 375 px), and the small copy-button script. Pure strings.
 */

/** The base look: readable type, wrapped long identifiers, status pills with AA contrast. */
export const BASE_STYLE = `
*,*::before,*::after{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1f2328;overflow-wrap:break-word}
h1{margin:0 0 .25rem;font-size:1.6rem}h2{font-size:1.1rem;margin-top:2rem}
a{color:#0550ae}
.meta{color:#59636e;margin:.25rem 0}code{font:13px ui-monospace,monospace}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;font-weight:600;margin:.25rem 0}
.status-succeeded{background:#1a7f37}.status-failed,.status-timeout,.status-cancelled{background:#cf222e}
.status-building{background:#0969da}.status-queued{background:#8a5c00}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow:auto;max-width:100%}
button.copy{font:12px system-ui,sans-serif;margin-left:.4rem;padding:.05rem .45rem;border:1px solid #afb8c1;border-radius:4px;background:#f6f8fa;color:#1f2328;cursor:pointer}
`;

/**
 * Tables marked `class="cards"`: a normal table on wide screens; below 40rem each row is a card
 * whose cells show their column name (`data-label`). Cells marked `wide` or `wrap` may break
 * long values anywhere (references, ids, tag names); other cells keep words whole.
 */
export const CARD_TABLE_STYLE = `
table.cards{border-collapse:collapse;width:100%;table-layout:auto}
table.cards th,table.cards td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d1d9e0;vertical-align:top}
table.cards td.wide,table.cards td.wrap{overflow-wrap:anywhere}
table.cards td.wide{min-width:12rem}
@media (max-width:40rem){
table.cards thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards tr{border:1px solid #d1d9e0;border-radius:6px;margin:0 0 .75rem;padding:.25rem 0}
table.cards td{border:0;padding:.15rem .6rem;min-width:0}
table.cards td.wide{min-width:0}
table.cards td[data-label]::before{content:attr(data-label) ": ";color:#59636e;font-weight:600}
}
`;

/**
 * Adds a "Copy" button after every element with `data-copy` (progressive enhancement: without
 * JavaScript the value is still shown in full and selectable).
 */
export const COPY_SCRIPT = `
for (const el of document.querySelectorAll("[data-copy]")) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy " + (el.getAttribute("data-copy-label") || "value"));
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(el.getAttribute("data-copy")); button.textContent = "Copied"; }
    catch { button.textContent = "Copy failed"; }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  el.after(button);
}
`;

/**
 * A Content-Security-Policy for a server-rendered page: exactly its inline scripts (by hash),
 * inline styles, same-origin fetches and images, forms to this origin only when asked; nothing
 * external.
 */
export async function pageContentSecurityPolicy(page: string, options: { forms?: boolean } = {}): Promise<string> {
  const hashes: string[] = [];
  for (const match of page.matchAll(/<script>([\s\S]*?)<\/script>/g)) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(match[1])));
    hashes.push(`'sha256-${btoa(String.fromCharCode(...digest))}'`);
  }
  const scriptSrc = hashes.length ? hashes.join(" ") : "'none'";
  const formAction = options.forms ? "'self'" : "'none'";
  return `default-src 'none'; script-src ${scriptSrc}; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action ${formAction}; frame-ancestors 'none'`;
}

/** Headers of every HTML page response (the caller adds Cache-Control). */
export async function htmlPageHeaders(page: string, options: { forms?: boolean } = {}): Promise<Record<string, string>> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": await pageContentSecurityPolicy(page, options),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
}
