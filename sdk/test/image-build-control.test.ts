// image.build({ timeoutSeconds, signal }) against a scripted server: the limit travels with
// the submission (and is checked first), and aborting the signal posts the build's cancel and
// rejects with an ImageBuildError whose reason is `cancelled`.

import { describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { ImageBuildError, InvalidError } from "../src/errors.ts";
import { Image } from "../src/image.ts";

type Call = { method: string; path: string; body: any };

/** A server with one running build `bd-1` of image `im-1`, which ends `cancelled` once its cancel is posted. */
function server(onBuildRead: () => void = () => {}) {
  const calls: Call[] = [];
  let cancelled = false;
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const call = {
      method: init?.method ?? "GET",
      path: url.pathname,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    let body: unknown = {};
    if (call.method === "POST" && call.path === "/v1/images") body = { id: "im-1", status: "building", buildId: "bd-1", layers: [] };
    else if (call.method === "POST" && call.path === "/v1/builds/bd-1/cancel") {
      cancelled = true;
      body = { id: "bd-1", status: "cancelled" };
    } else if (call.path === "/v1/builds/bd-1") {
      onBuildRead();
      await new Promise((r) => setTimeout(r, 20));
      body = { id: "bd-1", status: cancelled ? "cancelled" : "running" };
    } else if (call.path === "/v1/images/im-1") {
      const failure = {
        reason: "cancelled",
        message: "the build was cancelled",
        exitCode: null,
        layerKey: null,
        layerIndex: null,
        logTail: [],
      };
      body = { id: "im-1", status: cancelled ? "cancelled" : "building", buildId: "bd-1", failure: cancelled ? failure : null, layers: [] };
    }
    return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "kiln_api_t", fetch, maxRetries: 0 }), calls };
}

const image = () => Image.fromRegistry("busybox:1").runCommands("sleep 120");

describe("image.build controls", () => {
  it("sends timeoutSeconds with the submission", async () => {
    const controller = new AbortController();
    const { client, calls } = server(() => controller.abort());
    await image()
      .build({ client, logs: false, timeoutSeconds: 900, signal: controller.signal })
      .catch(() => {});
    expect(calls.find((c) => c.path === "/v1/images")!.body.timeoutSeconds).toBe(900);
  });

  it("refuses a limit the server would not accept, before any request", async () => {
    const { client, calls } = server();
    await expect(image().build({ client, timeoutSeconds: 59 })).rejects.toThrow(InvalidError);
    await expect(image().build({ client, timeoutSeconds: 1.5 })).rejects.toThrow(/from 60 to 86400/);
    expect(calls).toEqual([]);
  });

  it("an aborted signal cancels the build and rejects with reason cancelled", async () => {
    const controller = new AbortController();
    const { client, calls } = server(() => controller.abort());
    const error = await image()
      .build({ client, logs: false, signal: controller.signal })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ImageBuildError);
    expect((error as ImageBuildError).reason).toBe("cancelled");
    expect(calls.filter((c) => c.method === "POST" && c.path === "/v1/builds/bd-1/cancel")).toHaveLength(1);
  });

  it("a signal aborted before the build uploads and submits nothing", async () => {
    const { client, calls } = server();
    await expect(image().build({ client, signal: AbortSignal.abort() })).rejects.toThrow(/aborted/);
    expect(calls).toEqual([]);
  });
});
