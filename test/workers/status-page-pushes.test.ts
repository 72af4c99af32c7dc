// The status page's "Pushed to" section (workers/status-page/pushes.ts through
// workers/routes/status-page.ts, decision 0019): each target's reference, status, digest or the
// registry's message, escaped and wrapping; no section for an image pushed nowhere.
import type { Job } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { pushesSection } from "../../workers/status-page/pushes.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import {
  api,
  apiJson,
  chain,
  completeJob,
  digestFor,
  newFleet,
  newTenant,
  nthJob,
  sendEvent,
  settle,
  submitImage,
  type TestFleet,
} from "./helpers.ts";

const DIGEST = `sha256:${"cd".repeat(32)}`;
const GOOD = `registry.example.com/${"team/".repeat(20)}app:v1`;
const BAD = "other.example.com/app:v1";
const MESSAGE = `DENIED: <b>requested access</b> & "denied" (HTTP 403)`;

/** The page's "Pushed to" section, or undefined. */
const section = (html: string) => /<section id="pushes">([\s\S]*?)<\/section>/.exec(html)?.[1];

describe("GET /images/:id of a pushed image", () => {
  it("lists each target: reference, status, digest or the escaped registry message", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const push = [
      { reference: GOOD, secret: null },
      { reference: BAD, secret: null },
    ];
    const r = await submitImage(t.token, chain(1), { push });
    expect(r.status).toBe(202);
    await settle(r.body.buildId);
    await completeJobWithPushes(fleet, await nthJob(fleet, 1), [
      { type: "push_result", reference: GOOD, status: "succeeded", digest: DIGEST, message: null },
      { type: "push_result", reference: BAD, status: "failed", digest: null, message: MESSAGE },
    ]);
    expect((await apiJson("PUT", "/v1/tags/pushed", { token: t.token, json: { imageId: r.body.id, public: true } })).status).toBe(200);

    const response = await api("GET", `/images/${r.body.id}`);
    expect(response.status).toBe(200);
    const html = await response.text();
    const pushes = section(html);
    expect(pushes).toBeDefined();
    expect(pushes).toContain("<h2>Pushed to</h2>");
    const rows = pushes!.match(/<tr><td[\s\S]*?<\/tr>/g)!;
    expect(rows).toHaveLength(2);
    // Long references and digests wrap inside their cells instead of widening the table.
    expect(rows[0]).toBe(
      `<tr><td class="status-succeeded">succeeded</td><td style="width:100%;overflow-wrap:anywhere"><code>${GOOD}</code><br><code>${DIGEST}</code></td></tr>`,
    );
    expect(rows[1]).toBe(
      `<tr><td class="status-failed">failed</td><td style="width:100%;overflow-wrap:anywhere"><code>${BAD}</code><br><span class="push-error">DENIED: &lt;b&gt;requested access&lt;/b&gt; &amp; &quot;denied&quot; (HTTP 403)</span></td></tr>`,
    );
    expect(html).not.toContain("<b>requested access</b>");
    // The section sits between the layers and the log.
    expect(html.indexOf("<h2>Layers</h2>")).toBeLessThan(html.indexOf("<h2>Pushed to</h2>"));
    expect(html.indexOf("<h2>Pushed to</h2>")).toBeLessThan(html.indexOf("<h2>Log</h2>"));
  });

  it("has no section for an image pushed nowhere", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const r = await submitImage(t.token, chain(1));
    await settle(r.body.buildId);
    await completeJob(fleet, await nthJob(fleet, 1));
    await apiJson("PUT", "/v1/tags/plain", { token: t.token, json: { imageId: r.body.id, public: true } });
    const html = await (await api("GET", `/images/${r.body.id}`)).text();
    expect(html).toContain("<h2>Layers</h2>");
    expect(html).not.toContain("Pushed to");
  });
});

describe("pushesSection", () => {
  it("renders a pending target with neither digest nor message, and nothing for no targets", () => {
    const html = pushesSection([{ reference: BAD, status: "pending", digest: null, message: null }]);
    expect(html).toContain(`<td class="status-pending">pending</td><td style="width:100%;overflow-wrap:anywhere"><code>${BAD}</code></td>`);
    expect(pushesSection(undefined)).toBe("");
    expect(pushesSection([])).toBe("");
  });
});

// What a runner reports: accepted, started, each layer (its image in the registry), every push target, then `succeeded`.
async function completeJobWithPushes(fleet: TestFleet, job: Job, results: Parameters<typeof sendEvent>[2][]): Promise<void> {
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
  for (const l of job.layers) {
    await registerLayerImage(job, l, digestFor(l.key));
    const event = { type: "layer_succeeded" as const, layerKey: l.key, digest: digestFor(l.key), sizeBytes: 1000, reference: l.target };
    expect((await sendEvent(fleet, job, event)).status).toBe(200);
  }
  for (const result of results) expect((await sendEvent(fleet, job, result)).status).toBe(200);
  expect((await sendEvent(fleet, job, { type: "succeeded" })).status).toBe(200);
  await settle(job.jobId);
}
