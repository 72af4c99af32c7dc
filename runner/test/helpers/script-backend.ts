/**
 * A build backend whose build and push commands are small shell scripts chosen by the
 * test, for job-loop tests without buildah or a registry. Scripts coordinate through
 * marker files: `mark NAME` creates `$M/NAME` and appends NAME to `$M/timeline` (the order
 * things happened in), `await NAME` waits for a marker and `await_file PATH` for a file (exit 9
 * after `awaitSeconds`). The pushed manifest is served by {@link fakeRegistryFetch}, and
 * `digest()` answers its digest.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { BuildBackend, BuildRequest } from "../../src/backends/types.ts";
import { lastExitCode } from "../../src/backends/types.ts";
import type { Command } from "../../src/process.ts";

/** The scripts of one layer: build and push; `$AUTH` is the request's auth file, `$CONTEXT` its build context directory. */
export type LayerScripts = { build?: string; push?: string };

/** The manifest the fake registry holds for `reference`. */
export function fakeManifest(reference: string): string {
  return JSON.stringify({ schemaVersion: 2, config: { size: 100 }, layers: [{ size: 1000 }], annotations: { reference } });
}

/** A `fetch` that answers manifest requests for `registryHost` itself and passes everything else on. */
export function fakeRegistryFetch(registryHost: string): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (url.host !== registryHost || !match) return fetch(input, init);
    const body = fakeManifest(`${registryHost}/${match[1]}:${match[2]}`);
    return Promise.resolve(new Response(body, { headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } }));
  };
}

/** Runs each layer's scripts (by layer index); `pushes: false` plays a BuildKit backend, whose build pushes. */
export class ScriptBackend implements BuildBackend {
  readonly name = "buildah";
  /** Each layer is its own scripted build. */
  readonly chains = false;
  /** Directory of marker files; set per test. */
  marks = "";
  /** Scripts by layer index; missing ones mark `build-<i>-start`/`-end` and `push-<i>-start`/`-end`. */
  scripts = new Map<number, LayerScripts>();
  pushes = true;
  awaitSeconds = 20;
  readonly requests: BuildRequest[] = [];

  /** Clears scripts and requests, and points markers at `marks`. */
  reset(marks: string, options: { pushes?: boolean } = {}): void {
    this.marks = marks;
    this.scripts.clear();
    this.requests.length = 0;
    this.pushes = options.pushes ?? true;
  }

  /** Marker names in the order they were made. */
  timeline(): string[] {
    const file = path.join(this.marks, "timeline");
    return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  }

  /** Whether `name` was marked. */
  marked(name: string): boolean {
    return existsSync(path.join(this.marks, name));
  }

  runFlags(): string[] {
    return [];
  }

  build(request: BuildRequest): Command {
    this.requests.push(request);
    const i = layerIndex(request);
    return this.#script(request, this.scripts.get(i)?.build ?? `mark build-${i}-start; mark build-${i}-end`);
  }

  push(request: BuildRequest): Command | null {
    if (!this.pushes) return null;
    const i = layerIndex(request);
    return this.#script(request, this.scripts.get(i)?.push ?? `mark push-${i}-start; mark push-${i}-end`);
  }

  async digest(request: BuildRequest): Promise<string> {
    return `sha256:${createHash("sha256").update(fakeManifest(request.target)).digest("hex")}`;
  }

  remove(): null {
    return null;
  }

  cleanup(): Command {
    return this.#script(null, "mark cleanup");
  }

  chainProgress(): null {
    return null;
  }

  tag(): null {
    return null;
  }

  imageConfig(): null {
    return null;
  }

  stepExitCode(tail: readonly string[]): number | null {
    return lastExitCode(tail, /building at STEP .*exit status (\d+)\s*$/);
  }

  version(): Command {
    return { argv: ["true"] };
  }

  #script(request: BuildRequest | null, body: string): Command {
    const prelude = [
      'mark() { : > "$M/$1"; echo "$1" >> "$M/timeline"; }',
      `await_file() { n=0; while [ ! -e "$1" ]; do n=$((n+1)); if [ $n -gt ${this.awaitSeconds * 20} ]; then echo "timed out waiting for $1"; exit 9; fi; sleep 0.05; done; }`,
      'await() { await_file "$M/$1"; }',
    ].join("\n");
    return {
      argv: ["sh", "-c", `${prelude}\n${body}`],
      env: { M: this.marks, AUTH: request?.authFile ?? "", CONTEXT: request?.contextDir ?? "" },
    };
  }
}

/** The layer index from the request's per-layer paths (`.../layer-<i>/dockerfile/Dockerfile`). */
function layerIndex(request: BuildRequest): number {
  const match = /layer-(\d+)/.exec(request.dockerfile);
  if (!match) throw new Error(`no layer index in ${request.dockerfile}`);
  return Number(match[1]);
}

/** A buildah-style failed step: the line `stepExitCode` recognises, then a non-zero exit. */
export function failingStep(code: number): string {
  return `echo 'Error: building at STEP "RUN exit ${code}": exit status ${code}' >&2; exit 1`;
}
