// Worker secrets (set with `wrangler secret put`, or .dev.vars locally). They are not in
// wrangler.toml, so `wrangler types` cannot see them; they are declared here for both the
// global `Env` and `Cloudflare.Env` that the generated worker-configuration.d.ts defines.
interface KilnSecrets {
  /** Bootstrap admin token for a fresh deployment. */
  KILN_ADMIN_TOKEN?: string;
  /** Key-encryption key for secrets at rest: base64 of 32 random bytes. */
  KILN_SECRET_KEY?: string;
}
interface Env extends KilnSecrets {}
declare namespace Cloudflare {
  interface Env extends KilnSecrets {}
}
