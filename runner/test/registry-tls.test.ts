// `--ca-file` loads the undici package for its per-request CA option; loading it must not make
// undici the dispatcher of Node's own fetch for the rest of the runner (a different major: a
// Buffer body with an explicit content-length was refused with "invalid content-length header").
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { rootCertificates } from "node:tls";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryFetch } from "../src/registry-tls.ts";

const run = promisify(execFile);

describe("registryFetch with a CA file", () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      let bytes = 0;
      request.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      request.on("end", () => response.end(JSON.stringify({ bytes, length: request.headers["content-length"] ?? null })));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("leaves Node's own fetch and its dispatcher alone", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-ca-"));
    const caFile = path.join(dir, "ca.pem");
    writeFileSync(caFile, rootCertificates[0]!);
    // A plain Node process (vitest's module loader would give the test another copy of undici).
    const script = [
      `import { registryFetch } from ${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, "../src/registry-tls.ts")).href)};`,
      `const viaCa = registryFetch(${JSON.stringify(caFile)});`,
      `const first = await (await viaCa(${JSON.stringify(url)})).json();`,
      "const body = Buffer.alloc(3 * 1024 * 1024, 7);",
      `const second = await (await fetch(${JSON.stringify(url)}, { method: "POST", headers: { "content-length": String(body.byteLength) }, body })).json();`,
      'const { Agent } = await import("undici");',
      'const taken = globalThis[Symbol.for("undici.globalDispatcher.1")] instanceof Agent;',
      "console.log(JSON.stringify({ first, second, taken }));",
    ].join("\n");
    // Asynchronously: the server the child talks to runs in this process.
    const child = await run(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: import.meta.dirname });
    expect(JSON.parse(child.stdout)).toEqual({
      first: { bytes: 0, length: null },
      second: { bytes: 3 * 1024 * 1024, length: String(3 * 1024 * 1024) },
      taken: false,
    });
  });

  it("refuses a file that holds no certificate", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-ca-"));
    const caFile = path.join(dir, "empty.pem");
    writeFileSync(caFile, "not a certificate\n");
    expect(() => registryFetch(caFile)).toThrow(/holds no PEM certificate/);
  });
});
