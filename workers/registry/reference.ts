/**
 * Pure parsing of what the OCI Distribution API puts in URLs: repository names, tags,
 * digests, the `/v2/...` route shape (names contain slashes, so no router pattern can split
 * them) and token scopes. Grammar from the OCI Distribution Spec v1.1.
 */
import { digestInvalid } from "./errors.ts";

const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Longest repository name accepted (distribution's limit). */
export const MAX_NAME_LENGTH = 255;

/**
 * True for a valid Kiln repository name: the spec's grammar, at least two components
 * (`<workspace>/<repo>`), at most 255 characters.
 */
export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name) && name.includes("/");
}

/** The workspace namespace of a repository: its first path component. */
export function workspaceNameOf(repository: string): string {
  return repository.slice(0, repository.indexOf("/"));
}

/** True for a valid tag. */
export function isTag(reference: string): boolean {
  return TAG.test(reference);
}

/** Digest syntax check: `sha256` (the only algorithm stored), `other` (well-formed but unsupported), or `invalid`. */
export function classifyDigest(value: string): "sha256" | "other" | "invalid" {
  if (SHA256.test(value)) return "sha256";
  return ANY_DIGEST.test(value) ? "other" : "invalid";
}

/** What a `/v2/...` path addresses. */
export type RegistryRoute =
  | { kind: "base" }
  | { kind: "token" }
  | { kind: "uploads"; name: string }
  | { kind: "upload"; name: string; uploadId: string }
  | { kind: "blob"; name: string; digest: string }
  | { kind: "manifest"; name: string; reference: string }
  | { kind: "tags"; name: string }
  | { kind: "referrers"; name: string; digest: string }
  | { kind: "unknown" };

const ROUTES: [RegExp, (m: RegExpExecArray) => RegistryRoute][] = [
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: "uploads", name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([A-Za-z0-9_-]{1,128})$/, (m) => ({ kind: "upload", name: m[1]!, uploadId: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: "blob", name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: "manifest", name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: "tags", name: m[1]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: "referrers", name: m[1]!, digest: m[2]! })],
];

/** Classifies a request path under `/v2`. The name is not validated here (see `isRepositoryName`). */
export function parseRegistryPath(path: string): RegistryRoute {
  if (path === "/v2" || path === "/v2/") return { kind: "base" };
  if (path === "/v2/token") return { kind: "token" };
  for (const [pattern, build] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return build(match);
  }
  return { kind: "unknown" };
}

/** One action on one repository, as in a token scope. */
export type RegistryAction = "pull" | "push" | "delete";

/** A requested `repository:<name>:<actions>` scope. */
export type RepositoryScope = { name: string; actions: RegistryAction[] };

/**
 * Parses the `scope` parameters of a token request (each may hold several space-separated
 * scopes). Unknown resource types and actions are dropped, as the Docker token spec allows.
 */
export function parseScopes(values: readonly string[]): RepositoryScope[] {
  const out = new Map<string, Set<RegistryAction>>();
  for (const value of values) {
    for (const scope of value.split(" ")) {
      const first = scope.indexOf(":");
      const last = scope.lastIndexOf(":");
      if (first < 0 || last === first || scope.slice(0, first) !== "repository") continue;
      const name = scope.slice(first + 1, last);
      if (!isRepositoryName(name)) continue;
      const actions = out.get(name) ?? new Set<RegistryAction>();
      for (const action of scope.slice(last + 1).split(",")) {
        if (action === "pull" || action === "push" || action === "delete") actions.add(action);
        if (action === "*") for (const a of ["pull", "push", "delete"] as const) actions.add(a);
      }
      out.set(name, actions);
    }
  }
  return [...out].map(([name, actions]) => ({ name, actions: [...actions].sort() }));
}

/** Throws DIGEST_INVALID unless `digest` is a sha256 digest. */
export function requireDigest(digest: string): void {
  const kind = classifyDigest(digest);
  if (kind === "invalid") throw digestInvalid("invalid digest", { digest });
  if (kind === "other") throw digestInvalid("only sha256 digests are supported", { digest });
}
