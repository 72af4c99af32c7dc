// Worker secrets (set with `wrangler secret put`, or .dev.vars locally). They are not in
// wrangler.toml, so `wrangler types` cannot see them; they are declared here for both the
// global `Env` and `Cloudflare.Env` that the generated worker-configuration.d.ts defines.
interface KilnSecrets {
  /** Bootstrap admin token for a fresh deployment. */
  KILN_ADMIN_TOKEN?: string;
  /** Key-encryption key for secrets at rest: base64 of 32 random bytes. */
  KILN_SECRET_KEY?: string;
  /** Signs image attestations: an Ed25519 private JWK, or a JWKS whose first private key signs (docs/attestations.md). */
  KILN_ATTESTATION_KEY?: string;
}
// Vars only local stacks set (scripts/start.ts, test/node/registry-harness.ts, with `--var`);
// production leaves them unset and gets the defaults (decision 0017).
interface KilnLocalVars {
  /** "true": webhooks may go to loopback and private addresses and over http (local development only). */
  WEBHOOKS_ALLOW_PRIVATE?: string;
  /** Comma-separated delays in ms before each webhook attempt; unset: the Standard Webhooks schedule. */
  WEBHOOK_RETRY_SCHEDULE_MS?: string;
}
interface Env extends KilnSecrets, KilnLocalVars {}
declare namespace Cloudflare {
  interface Env extends KilnSecrets, KilnLocalVars {}
}
