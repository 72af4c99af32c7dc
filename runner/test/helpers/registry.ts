/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution v2) on 127.0.0.1
 * with a throw-away storage directory, started per test file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { registryFetch } from "../../src/registry-tls.ts";

/** A running registry: `host` is `127.0.0.1:<port>`. */
export type TestRegistry = { host: string; stop(): Promise<void> };

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `docker-registry serve` and waits until `/v2/` answers. `tls`: serve https with this
 * certificate (see tls-ca.ts), probed with a fetch trusting `tls.caFile`.
 */
export async function startRegistry(
  options: { htpasswd?: string; tls?: { certFile: string; keyFile: string; caFile: string } } = {},
): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-registry-"));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const auth = options.htpasswd ? `auth:\n  htpasswd:\n    realm: kiln-test\n    path: ${path.join(dir, "htpasswd")}\n` : "";
    const tls = options.tls ? `  tls:\n    certificate: ${options.tls.certFile}\n    key: ${options.tls.keyFile}\n` : "";
    if (options.htpasswd) await writeFile(path.join(dir, "htpasswd"), options.htpasswd);
    await writeFile(
      path.join(dir, "config.yml"),
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`,
    );
    const child: ChildProcess = spawn("docker-registry", ["serve", path.join(dir, "config.yml")], { stdio: "ignore" });
    const host = `127.0.0.1:${port}`;
    const probe = options.tls ? { scheme: "https", fetch: registryFetch(options.tls.caFile) } : { scheme: "http", fetch };
    if (await waitForRegistry(host, child, probe)) {
      return {
        host,
        async stop() {
          child.kill("SIGTERM");
          await new Promise((resolve) => child.once("exit", resolve));
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill("SIGKILL");
    if (attempt >= 3) throw new Error("docker-registry did not start; is the docker-registry package installed?");
  }
}

async function waitForRegistry(host: string, child: ChildProcess, probe: { scheme: string; fetch: typeof fetch }): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false;
    const ok = await probe.fetch(`${probe.scheme}://${host}/v2/`).then(
      (r) => r.status === 200 || r.status === 401,
      () => false,
    );
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
