/**
 * Masks secret values in build output before it leaves the process or touches the disk.
 * Output arrives in arbitrary pieces, so a streaming masker holds back the shortest tail
 * that could still grow into a secret and releases it once the next piece (or the end)
 * decides it. Pure: no I/O.
 */
import type { Job } from "@kiln-build/protocol";

/** What a masked secret is replaced with. */
export const MASK = "***";

/** Values shorter than this are not masked by default: `env={"DEBUG": "1"}` becomes a secret too, and masking every "1" would destroy the log. */
export const DEFAULT_MASK_MIN_LENGTH = 4;

/** A set of secret values and the patterns derived from them. */
export class SecretMasker {
  readonly #patterns: string[];
  readonly #regex: RegExp | null;
  readonly #firstChars: Set<string>;
  readonly #maxLength: number;

  /** `values`: every secret value of the job; multi-line values also mask each of their long lines. */
  constructor(values: Iterable<string>, minLength = DEFAULT_MASK_MIN_LENGTH) {
    const patterns = new Set<string>();
    for (const value of values) {
      if (value.length >= minLength) patterns.add(value);
      // A service-account JSON printed re-indented still leaks its private-key lines.
      if (value.includes("\n")) {
        for (const line of value.split(/\r?\n/)) {
          const trimmed = line.trim();
          if (trimmed.length >= Math.max(minLength, 8)) patterns.add(trimmed);
        }
      }
    }
    this.#patterns = [...patterns].sort((a, b) => b.length - a.length);
    this.#regex = this.#patterns.length === 0 ? null : new RegExp(this.#patterns.map(escapeRegExp).join("|"), "g");
    this.#firstChars = new Set(this.#patterns.map((p) => p[0]!));
    this.#maxLength = this.#patterns[0]?.length ?? 0;
  }

  /** Number of distinct patterns masked. */
  get size(): number {
    return this.#patterns.length;
  }

  /** Masks every complete occurrence in `text`. */
  mask(text: string): string {
    return this.#regex === null ? text : text.replace(this.#regex, MASK);
  }

  /** A masker for one output stream whose pieces may split a secret anywhere. */
  stream(): MaskingStream {
    return new MaskingStream(this);
  }

  /** Index from which `text` must be held back because it may be the start of a secret. */
  holdFrom(text: string): number {
    for (let i = Math.max(0, text.length - this.#maxLength + 1); i < text.length; i++) {
      if (!this.#firstChars.has(text[i]!)) continue;
      const tail = text.slice(i);
      if (this.#patterns.some((p) => p.length > tail.length && p.startsWith(tail))) return i;
    }
    return text.length;
  }
}

/** Streaming side of {@link SecretMasker}: `push` pieces, then `end`. */
export class MaskingStream {
  readonly #masker: SecretMasker;
  #carry = "";

  constructor(masker: SecretMasker) {
    this.#masker = masker;
  }

  /** Adds a piece of output; returns the part that is now safe to release. */
  push(text: string): string {
    const masked = this.#masker.mask(this.#carry + text);
    const cut = this.#masker.holdFrom(masked);
    this.#carry = masked.slice(cut);
    return masked.slice(0, cut);
  }

  /** Releases whatever is held back (the stream ended, so no secret can complete). */
  end(): string {
    const rest = this.#carry;
    this.#carry = "";
    return rest;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Every secret value the job carries. */
export function jobSecretValues(job: Job): string[] {
  return Object.values(job.secrets).flatMap((values) => Object.values(values));
}
