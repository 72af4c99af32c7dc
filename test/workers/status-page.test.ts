// The public status page's failure block (workers/status-page/render.ts through
// workers/routes/status-page.ts): the failed layer, the step's exit code and the runner's log
// tail, HTML-escaped; and a failure with no such details renders none of them.
import { describe, expect, it } from "vitest";
import type { ImageView } from "../../workers/images/view.ts";
import { renderStatusPage } from "../../workers/status-page/render.ts";
import { api, apiJson, dispatchedBuild, sendEvent } from "./helpers.ts";

describe("GET /images/:id after a failed step", () => {
  it("shows the failed layer, the exit code and the escaped log tail", async () => {
    const { t, fleet, submitted, job } = await dispatchedBuild(2);
    const failedKey = job.layers[1]!.key;
    const logTail = ["+ ./configure", `<script>alert("tail")</script> & 'quoted'`, "+ exit 7"];
    const failed = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "RUN <make> failed",
      layerKey: failedKey,
      exitCode: 7,
      logTail,
    });
    expect(failed.status).toBe(200);
    expect((await apiJson("PUT", "/v1/tags/main", { token: t.token, json: { imageId: submitted.body.id, public: true } })).status).toBe(
      200,
    );

    const response = await api("GET", `/images/${submitted.body.id}`);
    expect(response.status).toBe(200);
    const html = await response.text();
    // A build with a timeline opens at the failure at a glance (workers/status-page/timeline.ts), shown once.
    expect(html).not.toContain('<div class="failure" id="failure">');
    const block = /<section class="glance" id="failure-glance"[^>]*>([\s\S]*?)<\/section>/.exec(html)?.[1];
    expect(block).toBeDefined();
    expect(block).toContain("<strong>build</strong>: RUN &lt;make&gt; failed (exit code 7)");
    // The chain has two layers, both built by this build: the second (1-based) failed.
    expect(block).toContain("Failed: layer 2");
    expect(block).toContain("exit code <code>7</code>");
    expect(block).toContain('<pre class="log tail" tabindex="0" aria-label="last lines of the log">+ ./configure\n');
    expect(block).toContain("&lt;script&gt;alert(&quot;tail&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;\n");
    expect(block).toContain(`kiln logs ${submitted.body.id}`);
    expect(html).not.toContain(`<script>alert("tail")`);
  });
});

describe("renderStatusPage failure block", () => {
  const view = (failure: ImageView["failure"]): ImageView => ({
    id: "im-x",
    status: "cancelled",
    buildId: "bd-x",
    mode: "normal",
    failure,
    layers: [],
    createdAt: new Date(0).toISOString(),
  });
  const render = (image: ImageView) =>
    renderStatusPage({
      image,
      tag: null,
      badgeUrl: null,
      pageUrl: "https://kiln.test/images/im-x",
      builtAt: new Map(),
      log: [],
      logPollUrl: null,
      logCursor: 0,
    });

  it("shows only reason and message when there is no layer, exit code or tail", () => {
    const html = render(
      view({ reason: "cancelled", message: "Cancelled on request.", exitCode: null, layerKey: null, layerIndex: null, logTail: [] }),
    );
    const block = /<div class="failure" id="failure">([\s\S]*?)<\/div>/.exec(html)![1]!;
    expect(block).toContain("<strong>cancelled</strong>: Cancelled on request.");
    expect(block).not.toContain("exit code");
    expect(block).not.toContain("layer");
    expect(block).not.toContain("<pre");
  });

  it("names a layer outside the image's chain by key alone", () => {
    const key = "d".repeat(64);
    const html = render(view({ reason: "build", message: "failed", exitCode: 0, layerKey: key, layerIndex: null, logTail: [] }));
    expect(html).toContain(`layer <code title="${key}">${key.slice(0, 12)}</code> · exit code <code>0</code>`);
  });

  it("renders no block without a failure", () => {
    expect(render({ ...view(null), status: "building" })).not.toContain('id="failure"');
  });
});
