// GET /v1/images through the Worker's own fetch: newest first, statuses derived as for
// GET /v1/images/:id (built, cached, building), cursor pagination, auth and isolation.
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../workers/routes/images-list.ts";
import { apiJson, chain, completeJob, dispatches, newFleet, newTenant, settle, submitImage } from "./helpers.ts";

type Summary = { id: string; status: string; buildId: string | null; layerCount: number; topKey: string; createdAt: string };
type Page = { images: Summary[]; nextCursor: string | null };

describe("GET /v1/images", () => {
  it("lists the workspace's images newest first with the status GET /v1/images/:id reports", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const layers = chain(2);
    const built = await submitImage(t.token, layers);
    await settle(built.body.buildId);
    const [d] = await dispatches(fleet, 1);
    await completeJob(fleet, d!.job);
    const cached = await submitImage(t.token, layers);
    expect(cached.body.status).toBe("succeeded");
    const building = await submitImage(t.token, chain(3));

    const page = await apiJson<Page>("GET", "/v1/images", { token: t.token });
    expect(page.status).toBe(200);
    expect(page.body.images.map((i) => i.id)).toEqual([building.body.id, cached.body.id, built.body.id]);
    for (const summary of page.body.images) {
      const one = await apiJson<{ status: string; buildId: string | null }>("GET", `/v1/images/${summary.id}`, { token: t.token });
      expect(summary.status).toBe(one.body.status);
      expect(summary.buildId).toBe(one.body.buildId);
    }
    expect(page.body.images[1]).toMatchObject({ status: "succeeded", buildId: null, layerCount: 2 });
    expect(page.body.images[2]).toMatchObject({ status: "succeeded", layerCount: 2 });
    expect(["queued", "building"]).toContain(page.body.images[0]!.status);
    expect(page.body.nextCursor).toBeNull();
  });

  it("pages with an opaque cursor and refuses a forged one", async () => {
    const t = await newTenant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.unshift((await submitImage(t.token, chain(1))).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : "?limit=2";
      const page: { body: Page } = await apiJson<Page>("GET", `/v1/images${query}`, { token: t.token });
      seen.push(...page.body.images.map((i) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect((await apiJson("GET", "/v1/images?cursor=not-a-cursor", { token: t.token })).status).toBe(400);
    expect(decodeCursor(encodeCursor(1_700_000_000_000, "im-abc"))).toEqual({ createdAtMs: 1_700_000_000_000, id: "im-abc" });
  });

  it("needs images:read and never shows another workspace's images", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await submitImage(a.token, chain(1));
    expect((await apiJson<Page>("GET", "/v1/images", { token: b.token })).body.images).toEqual([]);
    expect((await apiJson("GET", "/v1/images")).status).toBe(401);
    const writer = await newTenant(["images:write"]);
    expect((await apiJson("GET", "/v1/images", { token: writer.token })).status).toBe(403);
  });
});
