/**
 * The `fetch` pushes to external registries use: Node's own, or, with `--ca-file`, one that
 * also trusts the given CA certificates (a registry behind a private or self-signed CA),
 * beside the system's roots. Only the runner's registry requests use it; nothing else in the
 * process trusts the extra CA.
 */
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";

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
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, pem] } });
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(
      input as Parameters<typeof undiciFetch>[0],
      { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1],
    )) as unknown as typeof fetch;
}
