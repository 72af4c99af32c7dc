// Issue "Tenant isolation and trust", item 4: a build's registry token is least-privilege. It
// pushes only to its workspace's `layers` repository and only its own layers' tags (or by
// digest), pulls only what its chain names, and cannot overwrite the user's base image, open
// new repositories or mount blobs from repositories it may not read; through Basic auth and
// through the Docker token flow alike. Everything goes through the Worker's real entry points.
import { env } from "cloudflare:test";
import type { Job } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { composeJob } from "../../../durable-objects/job.ts";
import { jobTokenScope } from "../../../workers/auth/job-scope.ts";
import { layer, newFleet, newTenant, nthJob, ORIGIN, settle, submitImage } from "../../workers/helpers.ts";
import { insertJobToken, sha256Digest } from "../../workers/periphery-helpers.ts";
import { basic, manifestOf, pushBlob, pushImage, putManifest, registry } from "./registry-push.ts";

const HOST = new URL(ORIGIN).host;
const tagOf = (target: string) => target.slice(target.lastIndexOf(":") + 1);

/** A tenant with a base image and a private image, and the job of a two-layer build on the base. */
async function jobOnBase() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const owner = basic(t.token);
  const ws = t.workspaceName;
  const base = await pushImage(`${ws}/base`, "busybox", owner, `base-${ws}`);
  const secretImage = await pushImage(`${ws}/private`, "v1", owner, `private-${ws}`);
  const root = layer([], { dockerfileCommands: [`FROM ${HOST}/${ws}/base:busybox`, `RUN echo ${ws}`] }, true);
  const submitted = await submitImage(t.token, [root, layer([`RUN echo ${ws} two`])]);
  expect(submitted.status).toBe(202);
  await settle(submitted.body.buildId);
  const job = await nthJob(fleet, 1);
  return { t, ws, owner, base, secretImage, job, jobAuth: basic(job.registry.credentials.password, "kiln-job") };
}

describe("job token registry scope", () => {
  it("cannot overwrite the user's base image, write foreign tags, open repositories or delete", async () => {
    const { ws, base, job, jobAuth } = await jobOnBase();
    const config = { digest: base.config.digest, size: base.configSize };
    const forged = manifestOf(config, config);
    // The reported attack: PUT /v2/<ws>/base/manifests/busybox replaced the user's base image.
    expect(await putManifest(`${ws}/base`, "busybox", jobAuth, forged)).toBe(403);
    const kept = await registry("GET", `/v2/${ws}/base/manifests/busybox`, jobAuth);
    expect(kept.headers.get("docker-content-digest")).toBe(await sha256Digest(base.manifest));
    for (const repo of [`${ws}/base`, `${ws}/brand-new`, `${ws}/layers-evil`]) {
      const upload = await registry("POST", `/v2/${repo}/blobs/uploads/`, jobAuth);
      expect(upload.status, repo).toBe(403);
      expect((await pushBlob(repo, jobAuth, new TextEncoder().encode("x"))).status, repo).toBe(403);
    }
    // Its own repository, but not one of its layers' tags: refused; its tags and digests: stored.
    const layers = `${ws}/layers`;
    const blob = new TextEncoder().encode(`built ${ws}`);
    const pushed = await pushBlob(layers, jobAuth, blob);
    expect(pushed.status).toBe(201);
    const manifest = manifestOf({ digest: pushed.digest, size: blob.byteLength }, { digest: pushed.digest, size: blob.byteLength });
    for (const tag of ["latest", "busybox", "a".repeat(64)]) expect(await putManifest(layers, tag, jobAuth, manifest), tag).toBe(403);
    expect(await putManifest(layers, tagOf(job.layers[0]!.target), jobAuth, manifest)).toBe(201);
    expect(await putManifest(layers, await sha256Digest(manifest), jobAuth, manifest)).toBe(201);
    expect((await registry("DELETE", `/v2/${layers}/manifests/${tagOf(job.layers[0]!.target)}`, jobAuth)).status).toBe(403);
  });

  it("pulls only its chain's images, and mounts only from repositories it may pull", async () => {
    const { ws, secretImage, base, jobAuth } = await jobOnBase();
    const other = await newTenant();
    await pushImage(`${other.workspaceName}/app`, "v1", basic(other.token), `other-${ws}`);
    expect((await registry("GET", `/v2/${ws}/base/manifests/busybox`, jobAuth)).status).toBe(200);
    expect((await registry("GET", `/v2/${ws}/base/blobs/${base.layer.digest}`, jobAuth)).status).toBe(200);
    expect((await registry("GET", `/v2/${ws}/private/manifests/v1`, jobAuth)).status).toBe(403);
    expect((await registry("GET", `/v2/${ws}/private/blobs/${secretImage.layer.digest}`, jobAuth)).status).toBe(403);
    expect((await registry("GET", `/v2/${other.workspaceName}/app/manifests/v1`, jobAuth)).status).toBe(403);
    // Mounting from a repository it may not read silently becomes an ordinary upload (202), which is not the blob.
    const stolen = await registry("POST", `/v2/${ws}/layers/blobs/uploads/?mount=${secretImage.layer.digest}&from=${ws}/private`, jobAuth);
    expect(stolen.status).toBe(202);
    expect((await registry("HEAD", `/v2/${ws}/layers/blobs/${secretImage.layer.digest}`, jobAuth)).status).toBe(404);
    const mounted = await registry("POST", `/v2/${ws}/layers/blobs/uploads/?mount=${base.layer.digest}&from=${ws}/base`, jobAuth);
    expect(mounted.status).toBe(201);
  });

  it("gets bearer tokens with the same limits from /v2/token", async () => {
    const { ws, job, jobAuth } = await jobOnBase();
    const layers = `${ws}/layers`;
    const scopes = [`${ws}/base:pull,push`, `${layers}:pull,push,delete`, `${ws}/private:pull`, `${ws}/fresh:push`];
    const query = scopes.map((s) => `scope=repository:${s}`).join("&");
    const issued = await registry("GET", `/v2/token?service=kiln&${query}`, jobAuth);
    expect(issued.status).toBe(200);
    const { token } = await issued.json<{ token: string }>();
    const claims = JSON.parse(atob(token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")));
    const tags = job.layers.map((l) => tagOf(l.target)).sort();
    expect(claims.acc).toEqual({ [`${ws}/base`]: ["pull"], [layers]: ["pull", "push"] });
    expect(claims.tags).toEqual({ [layers]: tags });
    const bearer = `Bearer ${token}`;
    const blob = new TextEncoder().encode(`bearer ${ws}`);
    const pushed = await pushBlob(layers, bearer, blob);
    expect(pushed.status).toBe(201);
    const manifest = manifestOf({ digest: pushed.digest, size: blob.byteLength }, { digest: pushed.digest, size: blob.byteLength });
    expect(await putManifest(layers, "latest", bearer, manifest)).toBe(403);
    expect(await putManifest(layers, tags[1]!, bearer, manifest)).toBe(201);
    expect(await putManifest(`${ws}/base`, "busybox", bearer, manifest)).toBe(401);
  });

  it("reaches nothing private with a token stored without a scope (rows from before the migration)", async () => {
    const t = await newTenant();
    const ws = t.workspaceName;
    await pushImage(`${ws}/base`, "busybox", basic(t.token), `legacy-${ws}`);
    const legacy = basic(await insertJobToken(t.workspaceId), "kiln-job");
    expect((await registry("GET", `/v2/${ws}/base/manifests/busybox`, legacy)).status).toBe(403);
    expect((await pushBlob(`${ws}/layers`, legacy, new TextEncoder().encode("x"))).status).toBe(403);
    const row = await env.DB.prepare("SELECT scope FROM job_tokens WHERE workspace_id = ?").bind(t.workspaceId).first();
    expect(row).toEqual({ scope: null });
  });
});

describe("jobTokenScope", () => {
  it("names the targets' tags to push and every image on this registry the Dockerfiles pull, ARGs expanded", () => {
    const spec = layer([], {
      dockerfileCommands: [
        "ARG REG=elsewhere.example",
        "FROM ${REG}/acme/base:1 AS build",
        `COPY --from=${HOST}/acme/tools@sha256:${"1".repeat(64)} /x /x`,
        `RUN --mount=type=bind,from=${HOST}/acme/cache:3,target=/c true`,
        "FROM docker.io/library/busybox:1.36",
        "COPY --from=build /x /x",
      ],
      buildArgs: { REG: HOST },
    });
    const job = composeJob({
      buildId: "bd-1",
      workspaceId: "w1",
      workspaceName: "acme",
      origin: ORIGIN,
      mode: "ignore",
      builderVersion: "2025.06",
      attemptId: "at-1",
      fencingToken: 1,
      parentReference: `${HOST}/acme/layers@sha256:${"2".repeat(64)}`,
      layers: [
        { index: 3, key: "k3", spec },
        { index: 4, key: "k4", spec: layer(["RUN true"]) },
      ],
      secrets: {},
      token: "kjt_x",
      deadlineMs: 0,
    }) as Job;
    expect(jobTokenScope(job)).toEqual({
      push: { "acme/layers": ["k3-bd-1", "k4-bd-1"] },
      pull: ["acme/base", "acme/cache", "acme/tools"],
    });
  });
});
