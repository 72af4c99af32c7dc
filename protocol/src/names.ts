/**
 * Names users choose and every part checks the same way: workspaces (also registry
 * namespaces), secrets, tags and the environment variable names of a layer.
 */
import { z } from "zod";

/**
 * A workspace name: a URL path segment (badges) and a registry namespace
 * (`<registry>/<name>/...`), so the stricter of the two: a lowercase DNS label.
 */
export const WorkspaceName = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "1-63 lowercase letters, digits or '-', starting and ending with a letter or digit");

/** A secret's name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit. */
export const SecretName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");

/** A tag: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-' (the OCI tag grammar). */
export const TagName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, "1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'");

/** An environment variable name as a POSIX shell accepts it. */
export const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);
