/** Hono's typing for the Worker: bindings and per-request variables. */
import type { Scope, TokenKind } from "./auth/tokens.ts";

/** Who is calling, resolved from the bearer token. */
export type AuthContext = {
  tokenId: string;
  kind: TokenKind;
  /** Null for admin tokens. */
  workspaceId: string | null;
  scopes: readonly Scope[];
};

/** The `Env` generic of every Hono app and middleware in the Worker. */
export type AppEnv = { Bindings: Env; Variables: { auth: AuthContext; requestId: string } };
