// `image.delete()` and `client.deleteImage()`: an image without an id fails before any request;
// a built one sends `DELETE /v1/images/{id}` and returns what the server deleted; the server's
// 409 and 404 arrive as their typed errors.
import { describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { ConflictError, ExecutionError, InvalidError, NotFoundAPIError } from "../src/errors.ts";
import { Image } from "../src/image.ts";

type Sent = { method: string; url: string };

/** A client whose fetch records requests and answers with `answer(request)`. */
function recordingClient(answer: (sent: Sent) => Response): { client: KilnClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request = { method: init?.method ?? "GET", url: String(input) };
    sent.push(request);
    return answer(request);
  };
  return { client: new KilnClient({ serverUrl: "http://kiln.invalid", token: "kiln_test", fetch, maxRetries: 0 }), sent };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const layer = {
  index: 0,
  key: "k",
  status: "succeeded",
  digest: `sha256:${"a".repeat(64)}`,
  reference: `kiln.invalid/ws/layers@sha256:${"a".repeat(64)}`,
};
const view = {
  id: "im-abc",
  status: "succeeded",
  buildId: null,
  mode: "normal",
  failure: null,
  layers: [layer],
  runtimeMounts: [],
  createdAt: "",
};

describe("image.delete()", () => {
  it("refuses an image that was never built, before any request", async () => {
    const { client, sent } = recordingClient(() => json(500, {}));
    await expect(Image.debianSlim().runCommands("true").delete({ client })).rejects.toThrow(ExecutionError);
    await expect(Image.debianSlim().delete({ client, force: true } as never)).rejects.toThrow(InvalidError);
    expect(sent).toEqual([]);
  });

  it("deletes a built image by its id and returns what went", async () => {
    const { client, sent } = recordingClient((r) =>
      r.method === "GET" ? json(200, view) : json(200, { id: "im-abc", deleted: true, tags: ["app:v1"] }),
    );
    const image = await Image.fromId("im-abc", { client });
    expect(await image.delete({ client })).toEqual({ id: "im-abc", deleted: true, tags: ["app:v1"] });
    expect(sent.at(-1)).toEqual({ method: "DELETE", url: "http://kiln.invalid/v1/images/im-abc" });
  });

  it("surfaces a running build as ConflictError and a deleted image as NotFoundAPIError", async () => {
    const building = recordingClient(() => json(409, { error: { code: "image_building", message: "cancel it first" } }));
    await expect(building.client.deleteImage("im-abc")).rejects.toThrow(ConflictError);
    const gone = recordingClient(() => json(404, { error: { code: "not_found", message: "Image 'im-abc' not found." } }));
    await expect(gone.client.deleteImage("im-abc")).rejects.toThrow(NotFoundAPIError);
    // Path segments are encoded: an id cannot change the route.
    await gone.client.deleteImage("../tags/x").catch(() => undefined);
    expect(gone.sent.at(-1)?.url).toBe("http://kiln.invalid/v1/images/..%2Ftags%2Fx");
  });
});
