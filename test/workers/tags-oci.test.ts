// Kiln tags `NAME:TAG` as real OCI tags of the built-in registry: `<ws>/NAME:TAG` answers the
// image's top-layer manifest once it succeeded, moves with the Kiln tag (the old digest stays
// pullable), goes with it, and follows the tag's visibility.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { registryRepositoryBlobs } from "../../workers/db/schema/registry.ts";
import { db } from "../../workers/registry/store.ts";
import { apiJson, chain, completeJob, newFleet, newTenant, newToken, nthJob, ORIGIN, settle, submitImage } from "./helpers.ts";

const basic = (token: string) => `Basic ${btoa(`x:${token}`)}`;
const manifest = (path: string, token: string | null, method = "GET") =>
  SELF.fetch(`${ORIGIN}/v2/${path}`, {
    method,
    headers: { ...(token ? { authorization: basic(token) } : {}), accept: "application/vnd.oci.image.manifest.v1+json" },
  });

/** A tenant with a fleet, and a helper building a fresh one-job image (optionally tagged) to success. */
async function tenant() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  let jobs = 0;
  const build = async (extra: Record<string, unknown> = {}) => {
    const submitted = await submitImage(t.token, chain(2), extra);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    await settle(submitted.body.buildId);
    await completeJob(fleet, await nthJob(fleet, ++jobs));
    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    return {
      id: submitted.body.id as string,
      digest: view.body.layers.at(-1).digest as string,
      view: view.body,
      submitted: submitted.body,
    };
  };
  return { ...t, build };
}

describe("Kiln tags as OCI tags", () => {
  it("publishes a submission's NAME:TAG when its build succeeds, and moves it atomically with PUT", async () => {
    const t = await tenant();
    const first = await t.build({ tag: "app:v1" });
    const reference = `kiln.test/${t.workspaceName}/app:v1`;
    expect(first.submitted.tags).toEqual([{ name: "app:v1", reference }]);
    expect(first.view.tags).toEqual([{ name: "app:v1", reference }]);
    const served = await manifest(`${t.workspaceName}/app/manifests/v1`, t.token);
    expect(served.status, await served.clone().text()).toBe(200);
    expect(served.headers.get("docker-content-digest")).toBe(first.digest);
    // The manifest's blobs are linked into the tag's repository (by reference, not copied).
    const linked = await db(env).select().from(registryRepositoryBlobs).all();
    expect(linked.filter((r) => r.repository === `${t.workspaceName}/app`).length).toBeGreaterThanOrEqual(2);
    const tag = await apiJson("GET", "/v1/tags/app:v1", { token: t.token });
    expect(tag.body).toMatchObject({ name: "app:v1", imageId: first.id, reference });

    const second = await t.build();
    expect(second.digest).not.toBe(first.digest);
    await apiJson("PUT", "/v1/tags/app:v1", { token: t.token, json: { imageId: second.id } });
    expect((await manifest(`${t.workspaceName}/app/manifests/v1`, t.token)).headers.get("docker-content-digest")).toBe(second.digest);
    // The old digest stays pullable by digest; the repository has one tag.
    expect((await manifest(`${t.workspaceName}/app/manifests/${first.digest}`, t.token)).status).toBe(200);
    const list = (await (await manifest(`${t.workspaceName}/app/tags/list`, t.token)).json()) as { name: string; tags: string[] };
    expect(list).toEqual({ name: `${t.workspaceName}/app`, tags: ["v1"] });
    expect((await apiJson("GET", `/v1/images/${first.id}`, { token: t.token })).body.tags).toEqual([]);
    expect((await apiJson("GET", `/v1/images/${second.id}`, { token: t.token })).body.tags).toEqual([{ name: "app:v1", reference }]);
  });

  it("holds many tags in one repository per NAME, paths included, and DELETE removes only the OCI tag", async () => {
    const t = await tenant();
    const image = await t.build();
    for (const name of ["app:v1", "app:latest", "team%2Fapi:v2"]) {
      const put = await apiJson("PUT", `/v1/tags/${name}`, { token: t.token, json: { imageId: image.id } });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
    }
    expect((await manifest(`${t.workspaceName}/team/api/manifests/v2`, t.token)).status).toBe(200);
    const list = (await (await manifest(`${t.workspaceName}/app/tags/list`, t.token)).json()) as { name: string; tags: string[] };
    expect(list.tags).toEqual(["latest", "v1"]);
    expect((await apiJson("DELETE", "/v1/tags/app:v1", { token: t.token })).status).toBe(200);
    expect((await manifest(`${t.workspaceName}/app/manifests/v1`, t.token)).status).toBe(404);
    expect((await manifest(`${t.workspaceName}/app/manifests/latest`, t.token)).status).toBe(200);
    expect((await manifest(`${t.workspaceName}/app/manifests/${image.digest}`, t.token)).status).toBe(200);
  });

  it("keeps single-word tags database names, and refuses names the OCI grammar does not allow", async () => {
    const t = await tenant();
    const image = await t.build({ tag: "main" });
    const tag = await apiJson("GET", "/v1/tags/main", { token: t.token });
    expect(tag.body).toMatchObject({ name: "main", imageId: image.id, reference: null });
    expect((await manifest(`${t.workspaceName}/main/manifests/latest`, t.token)).status).toBe(404);
    for (const name of ["App:v1", "app:.v1", "layers:v1", "app/:v1", "a:b:c", `app:${"x".repeat(129)}`]) {
      const put = await apiJson("PUT", `/v1/tags/${encodeURIComponent(name)}`, { token: t.token, json: { imageId: image.id } });
      expect(put.status, name).toBe(400);
    }
  });

  it("tags an image that is still building once it succeeds", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const submitted = await submitImage(t.token, chain(1));
    await apiJson("PUT", "/v1/tags/later:v1", { token: t.token, json: { imageId: submitted.body.id } });
    expect((await manifest(`${t.workspaceName}/later/manifests/v1`, t.token)).status).toBe(404);
    await settle(submitted.body.buildId);
    await completeJob(fleet, await nthJob(fleet, 1));
    expect((await manifest(`${t.workspaceName}/later/manifests/v1`, t.token)).status).toBe(200);
  });

  it("makes the repository public with a public tag (images:write), and refuses tags:write alone in a public one", async () => {
    const t = await tenant();
    const image = await t.build();
    await apiJson("PUT", "/v1/tags/site:v1", { token: t.token, json: { imageId: image.id } });
    expect((await manifest(`${t.workspaceName}/site/manifests/v1`, null)).status).toBe(401);
    const tagsOnly = await newToken(t.workspaceId, ["tags:write", "images:read"]);
    expect((await apiJson("PUT", "/v1/tags/site:v1", { token: tagsOnly, json: { imageId: image.id, public: true } })).status).toBe(403);
    await apiJson("PUT", "/v1/tags/site:v1", { token: t.token, json: { imageId: image.id, public: true } });
    expect((await manifest(`${t.workspaceName}/site/manifests/v1`, null)).status).toBe(200);
    const page = await SELF.fetch(`${ORIGIN}/images/by-tag/${t.workspaceName}/site:v1`);
    const pull = `kiln.test/${t.workspaceName}/site:v1`;
    expect(await page.text()).toContain(`pull <code data-copy="${pull}" data-copy-label="pull reference">${pull}</code>`);
    expect((await SELF.fetch(`${ORIGIN}/badges/${t.workspaceName}/site:v1.svg`)).status).toBe(200);
    // A new tag of a public repository takes its visibility; tags:write alone may not publish there.
    expect((await apiJson("PUT", "/v1/tags/site:v2", { token: t.token, json: { imageId: image.id } })).body.public).toBe(true);
    expect((await apiJson("PUT", "/v1/tags/site:v3", { token: tagsOnly, json: { imageId: image.id } })).status).toBe(403);
    await apiJson("PUT", "/v1/tags/site:v2", { token: t.token, json: { imageId: image.id, public: false } });
    expect((await manifest(`${t.workspaceName}/site/manifests/v1`, null)).status).toBe(200);
    await apiJson("PUT", "/v1/tags/site:v1", { token: t.token, json: { imageId: image.id, public: false } });
    expect((await manifest(`${t.workspaceName}/site/manifests/v1`, null)).status).toBe(401);
  });
});
