/**
 * The SDK's error hierarchy. Every error the SDK raises on purpose is a `KilnError`,
 * so callers can catch one class; subclasses say what kind of problem it was.
 */

/** Base class of every error the Kiln SDK raises deliberately. */
export class KilnError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The caller passed something the SDK cannot accept; fix the call and retry. */
export class InvalidError extends KilnError {}

/** A local file, directory, module or remote object the call refers to does not exist. */
export class NotFoundError extends KilnError {}

/** The requested image builder version is not one this SDK supports. */
export class VersionError extends KilnError {}

/** An operation that is valid in general cannot run in the current state. */
export class ExecutionError extends KilnError {}
