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

/** A tag: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-' (the OCI tag grammar). */
export const TagName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, "1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'");

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
