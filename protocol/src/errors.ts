/**
 * The errors every Kiln package raises for input it cannot accept. They live on the
 * protocol floor because the pure modules here (layer specs, GPU strings, builder versions,
 * the Dockerfile front-end) reject input, and the SDK's own hierarchy extends them so a
 * caller catches one `KilnError` whichever package threw it.
 */

/** Base class of every error a Kiln package raises deliberately. */
export class KilnError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The caller passed something Kiln cannot accept; fix the call and retry. */
export class InvalidError extends KilnError {}

/** The requested image builder version is not one this package supports. */
export class VersionError extends KilnError {}
