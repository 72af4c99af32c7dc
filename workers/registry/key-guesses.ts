/**
 * Per-isolate hints of where a blob's bytes live in R2 (digest -> key), so a whole-blob GET can
 * open the object concurrently with the D1 look-up that decides whether the repository holds it.
 * Only a hint: a wrong or stale one costs one discarded R2 get, never a wrong answer, because the
 * route sends an object only when its key is the one D1 returned. Bounded; oldest first out.
 */
import { blobKey } from "./blob-writer.ts";

const guesses = new Map<string, string>();
const MAX_GUESSES = 4096;

/** The key `digest`'s bytes were last seen under in this isolate, else its content-addressed key. */
export function guessBlobKey(digest: string): string {
  return guesses.get(digest) ?? blobKey(digest);
}

/** Records where `digest`'s bytes are (after a D1 answer or a verified write). */
export function rememberBlobKey(digest: string, r2Key: string): void {
  if (guesses.get(digest) === r2Key) return;
  guesses.delete(digest);
  if (guesses.size >= MAX_GUESSES) guesses.delete(guesses.keys().next().value!);
  guesses.set(digest, r2Key);
}
