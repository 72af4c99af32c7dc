// Context downloads: the bearer token is sent, size and sha256 are verified before anything
// is trusted, 5xx answers and dropped connections are retried, and nothing partial is left.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { downloadContext } from "../src/context-download.ts";
import { JobFailure } from "../src/failure.ts";

const body = Buffer.from("a context tarball, more or less");
const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
let dir: string;
let server: Server;
let url: string;
let plan: ("ok" | "503" | "drop" | "short")[];
let seen: (string | undefined)[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-dl-"));
  plan = [];
  seen = [];
  server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization !== "Bearer token-1") return void res.writeHead(401).end();
    const step = plan.shift() ?? "ok";
    if (step === "503") return void res.writeHead(503).end();
    if (step === "drop") return void req.socket.destroy();
    res.writeHead(200, { "content-length": step === "short" ? body.length - 5 : body.length });
    res.end(step === "short" ? body.subarray(5) : body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ctx`;
});
afterEach(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

const file = () => path.join(dir, "context.tar");

describe("downloadContext", () => {
  it("downloads with the bearer token and verifies the digest", async () => {
    await downloadContext({ url, digest, sizeBytes: body.length }, file(), { token: "token-1" });
    expect(await readFile(file())).toEqual(body);
    expect(seen).toEqual(["Bearer token-1"]);
  });

  it("retries 5xx answers and dropped connections", async () => {
    plan = ["503", "drop"];
    await downloadContext({ url, digest, sizeBytes: body.length }, file(), { token: "token-1", attempts: 3 });
    expect(seen).toHaveLength(3);
  });

  it("refuses a wrong digest or size at once, leaving no file", async () => {
    const wrong = `sha256:${"0".repeat(64)}`;
    const error = await downloadContext({ url, digest: wrong, sizeBytes: body.length }, file(), { token: "token-1" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JobFailure);
    expect((error as Error).message).toMatch(/does not match its digest/);
    expect(seen).toHaveLength(1);
    await expect(downloadContext({ url, digest, sizeBytes: body.length - 1 }, file(), { token: "token-1" })).rejects.toThrow(
      /larger than its declared/,
    );
    plan = ["short"];
    await expect(downloadContext({ url, digest, sizeBytes: body.length }, file(), { token: "token-1" })).rejects.toThrow(
      /bytes, but the job declared|does not match/,
    );
    expect(existsSync(file())).toBe(false);
  });

  it("does not retry a refused token, and respects the runner's size limit", async () => {
    await expect(downloadContext({ url, digest, sizeBytes: body.length }, file(), { token: "wrong" })).rejects.toThrow(/HTTP 401/);
    expect(seen).toHaveLength(1);
    await expect(downloadContext({ url, digest, sizeBytes: body.length }, file(), { token: "token-1", maxBytes: 10 })).rejects.toThrow(
      /over this runner's limit/,
    );
  });
});
