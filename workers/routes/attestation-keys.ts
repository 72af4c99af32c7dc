/**
 * `GET /.well-known/kiln/attestation-keys`: the public keys that verify Kiln's attestations
 * (decision 0024), as a JWKS with key ids. Public: anyone holding an image may verify it.
 * Every key of `KILN_ATTESTATION_KEY` is listed, so a rotated-out key keeps verifying what it
 * signed; private parts are never served.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { ATTESTATION_KEYS_PATH, AttestationKeySetSchema } from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { attestationKeys } from "../attestations/keys.ts";
import { errorResponses } from "./common.ts";

/** The attestation-keys sub-app, mounted at the root. */
export const attestationKeysApp = new OpenAPIHono<AppEnv>();

const route = createRoute({
  method: "get",
  path: ATTESTATION_KEYS_PATH,
  operationId: "getAttestationKeys",
  tags: ["attestations"],
  security: [],
  summary: "Public keys of image attestations (JWKS)",
  description: "Ed25519 keys (`kty: OKP`) with `kid`; a DSSE signature's `keyid` names the key that made it.",
  responses: {
    200: { description: "The key set.", content: { "application/json": { schema: AttestationKeySetSchema.openapi("AttestationKeySet") } } },
    ...errorResponses(503),
  },
});

attestationKeysApp.openapi(route, async (c) => {
  const { published } = await attestationKeys(c.env);
  return c.json(published, 200, { "cache-control": "public, max-age=300" });
});
