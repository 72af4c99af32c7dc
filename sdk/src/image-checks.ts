/** Argument checks shared by `Image`'s methods; each throws a typed error before any I/O. */
import { InvalidError } from "./errors.ts";
import type * as P from "./image-params.ts";
import type { RegistryAuthDef } from "./layer-def.ts";
import { Secret } from "./secret.ts";

/** Package lists may not smuggle pip/uv options; those go in `extraOptions`. */
export function rejectOptionLike(method: string, packages: string[]): void {
  if (packages.some((p) => p.startsWith("-"))) {
    throw new InvalidError(`Package list for \`${method}\` cannot contain other arguments; try the \`extraOptions\` parameter instead.`);
  }
}

/** The one registry secret the cloud-registry factories need. */
export function requireRegistrySecret(
  method: string,
  kind: "gcp" | "aws",
  params: P.ImageFromRegistryParams & { secrets?: unknown },
): RegistryAuthDef {
  if ("secrets" in params) throw new InvalidError(`Image.${method} takes one registry \`secret\`, not \`secrets\`.`);
  if (!(params.secret instanceof Secret)) {
    const keys = kind === "gcp" ? "SERVICE_ACCOUNT_JSON" : "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION";
    throw new InvalidError(`Image.${method} needs a registry secret holding ${keys}, e.g. Secret.fromName("registry").`);
  }
  return { kind, secret: params.secret };
}

/** Rejects references whose registry host the factory cannot authenticate to. */
export function assertRegistryHost(method: string, tag: string, host: RegExp, expected: string): void {
  const first = typeof tag === "string" ? tag.split("/")[0]! : "";
  if (!host.test(first)) throw new InvalidError(`Image.${method}: unsupported registry host '${first}' in '${tag}'; expected ${expected}.`);
}

/** Build args: identifier names, string values. */
export function checkBuildArgs(buildArgs: Record<string, string> | undefined): Record<string, string> {
  const args = buildArgs ?? {};
  for (const [key, value] of Object.entries(args)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || typeof value !== "string") {
      throw new InvalidError(`Invalid build arg ${JSON.stringify(key)}: names are identifiers and values strings.`);
    }
  }
  return { ...args };
}

/** Emits a DeprecationWarning naming the replacement. */
export function deprecated(method: string, replacement: string): void {
  process.emitWarning(`${method} is deprecated; use ${replacement} instead.`, { type: "DeprecationWarning", code: "KILN_DEPRECATED" });
}

/** Whether an error is Node's "module not found" (ESM or CommonJS). */
export function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
}
