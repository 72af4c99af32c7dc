// Digests of unpinned base images (decision 0024) through the Worker's own fetch: the runner's
// `base_digests` report is kept only from the job's current attempt, for layers the build builds
// and references a FROM line names without a digest; the provenance then records the digest.
import { SELF } from "cloudflare:test";
import { type DsseEnvelope, digestHex, SLSA_PROVENANCE_V1 } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import { digestFor, dispatchedBuild, newFleet, newTenant, ORIGIN, sendEvent } from "./helpers.ts";

const PULLED = `sha256:${"7e".repeat(32)}`;
const basic = (token: string) => ({ authorization: `Basic ${btoa(`kiln:${token}`)}` });

async function builtJob() {
  const { fleet, job, t } = await dispatchedBuild(2);
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
  for (const l of job.layers) {
    await registerLayerImage(job, l, digestFor(l.key));
    const event = { type: "layer_succeeded", layerKey: l.key, digest: digestFor(l.key), sizeBytes: 10, reference: l.target } as const;
    expect((await sendEvent(fleet, job, event)).status).toBe(200);
  }
  return { fleet, job, token: t.token, ws: t.workspaceName };
}

const report = (bases: { layerKey: string; reference: string; digest: string }[]) =>
  ({ type: "base_digests", bases }) as unknown as Parameters<typeof sendEvent>[2];

describe("base_digests", () => {
  it("records the digest of an unpinned FROM image in the provenance, marked as the runner's", async () => {
    const { fleet, job, token, ws } = await builtJob();
    const root = job.layers[0]!;
    const r = await sendEvent(fleet, job, report([{ layerKey: root.key, reference: "busybox:1.36", digest: PULLED }]));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const top = job.layers.at(-1)!;
    const digest = digestFor(top.key);
    expect((await sendEvent(fleet, job, { type: "sbom", layerKey: top.key, digest, sbom: null })).status).toBe(200);
    const index = (await (await SELF.fetch(`${ORIGIN}/v2/${ws}/layers/referrers/${digest}`, { headers: basic(token) })).json()) as {
      manifests: { digest: string }[];
    };
    const manifest = (await (
      await SELF.fetch(`${ORIGIN}/v2/${ws}/layers/manifests/${index.manifests[0]!.digest}`, { headers: basic(token) })
    ).json()) as {
      layers: { digest: string }[];
    };
    const envelope = (await (
      await SELF.fetch(`${ORIGIN}/v2/${ws}/layers/blobs/${manifest.layers[0]!.digest}`, { headers: basic(token) })
    ).json()) as DsseEnvelope;
    const statement = JSON.parse(atob(envelope.payload));
    expect(statement.predicateType).toBe(SLSA_PROVENANCE_V1);
    expect(statement.predicate.buildDefinition.resolvedDependencies).toContainEqual({
      uri: "docker://busybox:1.36",
      name: "base-image",
      digest: { sha256: digestHex(PULLED) },
      annotations: { "build.kiln.resolved-by": "runner" },
    });
  });

  it("refuses a reference the Dockerfile does not name, a layer not built here, a stale attempt and another fleet", async () => {
    const { fleet, job } = await builtJob();
    const root = job.layers[0]!;
    const cases = [
      { bases: [{ layerKey: root.key, reference: "evil.example/backdoor:1", digest: PULLED }], code: "unknown_base" },
      // The second layer is `FROM base` (the parent layer): no pull of its own.
      { bases: [{ layerKey: job.layers[1]!.key, reference: "busybox:1.36", digest: PULLED }], code: "unknown_base" },
      { bases: [{ layerKey: "0".repeat(64), reference: "busybox:1.36", digest: PULLED }], code: "unknown_layer" },
    ];
    for (const { bases, code } of cases) {
      const r = await sendEvent(fleet, job, report(bases));
      expect(r.status, JSON.stringify(bases)).toBe(409);
      expect(r.body.error.code).toBe(code);
    }
    const good = report([{ layerKey: root.key, reference: "busybox:1.36", digest: PULLED }]);
    expect((await sendEvent(fleet, { ...job, fencingToken: job.fencingToken + 3 }, good)).body.error.code).toBe("stale_attempt");
    const other = await newTenant();
    const otherFleet = await newFleet(other.workspaceId);
    expect((await sendEvent(otherFleet, job, good)).status).toBe(401);
    expect((await sendEvent(fleet, job, { type: "base_digests", bases: [] } as never)).status).toBe(400);
  });
});
