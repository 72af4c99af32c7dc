/**
 * The `fetch` pushes to external registries use: Node's own, or, with `--ca-file`, one that
 * also trusts the given CA certificates (a registry behind a private or self-signed CA),
 * beside the system's roots. Only the runner's registry requests use it; nothing else in the
 * process trusts the extra CA.
 */
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { Agent as UndiciAgent, fetch as UndiciFetch } from "undici";

const fetches = new Map<string, typeof fetch>();

/** A fetch that trusts the PEM certificates in `caFile` as well as the system roots (or the global fetch without one); one per file. */
export function registryFetch(caFile: string | undefined): typeof fetch {
  if (!caFile) return fetch;
  let made = fetches.get(caFile);
  if (!made) {
    made = caFetch(caFile);
    fetches.set(caFile, made);
  }
  return made;
}

function caFetch(caFile: string): typeof fetch {
  let pem: string;
  try {
    pem = readFileSync(caFile, "utf8");
  } catch (error) {
    throw new Error(`cannot read the CA file ${caFile} (--ca-file): ${(error as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new Error(`the CA file ${caFile} (--ca-file) holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  const ca = [...rootCertificates, pem];
  const client = loadUndici().then(({ Agent, fetch }) => ({ fetch, dispatcher: new Agent({ connect: { ca } }) }));
  return (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const { fetch, dispatcher } = await client;
    return fetch(input as Parameters<typeof UndiciFetch>[0], { ...(init as object), dispatcher } as Parameters<typeof UndiciFetch>[1]);
  }) as unknown as typeof fetch;
}

/**
 * Loads the undici package for its `Agent` (per-request CA certificates) without letting it take
 * over the process: when loaded, undici installs its own Agent as the process-wide dispatcher if
 * none is set yet, and Node's built-in fetch (a different undici major) would then send every other
 * request of the runner through it (a Buffer body with its content-length was refused that way).
 * A `data:` fetch first makes Node set up its own dispatcher, which undici then leaves alone.
 */
async function loadUndici(): Promise<{ Agent: typeof UndiciAgent; fetch: typeof UndiciFetch }> {
  await (await fetch("data:,")).arrayBuffer();
  const undici = await import("undici");
  return { Agent: undici.Agent, fetch: undici.fetch };
}
