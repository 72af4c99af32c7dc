/**
 * Names users choose and every part checks the same way: workspaces (also registry
 * namespaces), secrets, tags, the environment variable names of a layer, and the free-text
 * display names of tokens and fleets.
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

/** One single-word tag of the old grammar (the OCI tag grammar): a database name only, no OCI tag. */
const LEGACY_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** A repository path inside a workspace, in the OCI name grammar (lowercase components joined by `/`). */
const REPOSITORY_PATH = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** An OCI tag. */
const OCI_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** The repository path built layers live in (`<workspace>/layers`): no Kiln tag may name it. */
export const LAYERS_REPOSITORY_PATH = "layers";
/** The longest `NAME:TAG` Kiln tag (the registry's repository names are at most 255 characters with the workspace). */
export const MAX_TAG_NAME_LENGTH = 180;

/**
 * Where a Kiln tag is published in the built-in registry: `NAME:TAG` is the OCI tag `TAG` of the
 * repository `<workspace>/NAME`. A single word (the old grammar, e.g. `main`) is a database name
 * only and has no OCI tag (null), as before.
 */
export function ociTagOf(name: string): { path: string; tag: string } | null {
  const colon = name.lastIndexOf(":");
  if (colon < 0) return null;
  const path = name.slice(0, colon);
  const tag = name.slice(colon + 1);
  if (!REPOSITORY_PATH.test(path) || !OCI_TAG.test(tag) || path === LAYERS_REPOSITORY_PATH) return null;
  return { path, tag };
}

/**
 * A Kiln tag: `NAME:TAG`, published as the OCI tag `<registry>/<workspace>/NAME:TAG` (NAME a
 * repository path in the OCI grammar, lowercase components joined by `/`, not `layers`; TAG an
 * OCI tag), or a single word of 1-128 letters, digits, '_', '.' or '-' not starting with '.'
 * or '-' (the old grammar: a database name for badges and status pages, not published).
 */
export const TagName = z
  .string()
  .max(MAX_TAG_NAME_LENGTH, `at most ${MAX_TAG_NAME_LENGTH} characters`)
  .refine(
    (name) => LEGACY_TAG.test(name) || ociTagOf(name) !== null,
    "`NAME:TAG` (NAME lowercase letters, digits, '.', '_', '-' in '/'-separated components, not `layers`; TAG 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-') or a single word of 1-128 letters, digits, '_', '.' or '-'",
  );

/** An environment variable name as a POSIX shell accepts it. */
export const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);

/**
 * C0 and C1 control characters (NUL, newlines, tabs, escapes, DEL) and the bidirectional
 * embeddings, overrides and isolates that make text display in another order than it is stored.
 */
function hasControlOrBidi(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return true;
  }
  return false;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one (no UTF-8 encoding exists for either). */
function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff) return true;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    }
  }
  return false;
}

/**
 * Whether `text` can be shown as a name as it is: well-formed Unicode (no lone surrogates, which
 * have no UTF-8 encoding), no control characters (NUL included) and no bidirectional
 * overrides, and not blank.
 */
export function isDisplayText(text: string): boolean {
  return text.trim() !== "" && !hasControlOrBidi(text) && !hasLoneSurrogate(text);
}

/**
 * A free-text name people choose and read (API tokens, fleets): 1-`max` characters of
 * well-formed, printable Unicode. The one refinement for every such name, so no part stores a
 * NUL or a lone surrogate that a terminal, a log line or a UTF-8 column would mangle.
 */
export function displayName(max = 64) {
  return z
    .string()
    .min(1, "must not be empty")
    .max(max, `at most ${max} characters`)
    .refine((text) => !hasLoneSurrogate(text), "must be well-formed Unicode (no lone surrogate code units); send valid UTF-8 text")
    .refine(
      (text) => !hasControlOrBidi(text),
      "must not contain control characters (NUL, newlines, tabs) or bidirectional overrides; use printable text",
    )
    .refine((text) => text.trim() !== "", "must not be blank; use visible characters");
}

/** A display name of 1-64 characters (`displayName(64)`): token and fleet names. */
export const DisplayName = displayName(64);
