/**
 * The SDK's error hierarchy. Every error the SDK raises on purpose is a `KilnError`,
 * so callers can catch one class; subclasses say what kind of problem it was.
 */

import { InvalidError, KilnError, VersionError } from "@kiln-build/protocol";

// The input-validation errors live on the protocol floor (its pure modules throw them);
// the SDK re-exports them so `import { InvalidError } from "@kiln-build/sdk"` keeps working.
export { InvalidError, KilnError, VersionError };

/** A local file, directory, module or remote object the call refers to does not exist. */
export class NotFoundError extends KilnError {}

/** An operation that is valid in general cannot run in the current state. */
export class ExecutionError extends KilnError {}

/** The Kiln API answered with an error status. `status`, `code` and `requestId` identify it. */
export class APIError extends KilnError {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, requestId?: string, details?: unknown, options?: ErrorOptions) {
    super(`${message} (HTTP ${status} ${code}${requestId ? `, request id ${requestId}` : ""})`, options);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
  }
}

/** 400/422: the server rejected the request's content. */
export class BadRequestError extends APIError {}
/** 401: missing or invalid token (set KILN_TOKEN or pass `token`). */
export class AuthenticationError extends APIError {}
/** 403: the token lacks a scope. */
export class PermissionDeniedError extends APIError {}
/** 404: no such object in this workspace. */
export class NotFoundAPIError extends APIError {}
/** 409: the request conflicts with the object's current state. */
export class ConflictError extends APIError {}
/** 413: a body larger than the server accepts. */
export class PayloadTooLargeError extends APIError {}
/** 429: rate limited; retried automatically, honouring Retry-After. */
export class RateLimitError extends APIError {}
/** 5xx: the server failed; retried automatically. */
export class InternalServerError extends APIError {}
/** The server could not be reached (connection refused, reset, DNS, timeout). */
export class APIConnectionError extends KilnError {}

/** An image build failed: which layer, the exit code, the last lines of output. */
export class ImageBuildError extends KilnError {
  readonly imageId: string;
  readonly buildId: string | undefined;
  /** The failed layer's position in the chain, from 0 (the message numbers layers from 1). */
  readonly layerIndex: number | undefined;
  /** The failed layer's key. */
  readonly layerKey: string | undefined;
  /** The failing step's exit code, when a step exited non-zero. */
  readonly exitCode: number | undefined;
  /** Why the build failed: `build` (a step failed), `infra`, `timeout`, `cancelled` or `dependency`. */
  readonly reason: string;
  readonly logTail: readonly string[];

  constructor(fields: {
    imageId: string;
    buildId?: string;
    layerIndex?: number;
    layerKey?: string;
    exitCode?: number;
    reason: string;
    message: string;
    logTail?: string[];
  }) {
    // Layers are numbered from 1 here, as in the build log and on the status page.
    const where = fields.layerIndex === undefined ? "" : ` at layer ${fields.layerIndex + 1}`;
    const exit = fields.exitCode === undefined || fields.exitCode === null ? "" : ` (exit code ${fields.exitCode})`;
    const tail = fields.logTail?.length ? `\n\nLast lines of output:\n${fields.logTail.map((l) => `  ${l}`).join("\n")}` : "";
    const how = fields.buildId ? `\n\nSee the full log: kiln logs ${fields.buildId}` : "";
    super(`Image build for ${fields.imageId} failed${where}${exit}: ${fields.reason}: ${fields.message}${tail}${how}`);
    this.imageId = fields.imageId;
    this.buildId = fields.buildId;
    this.layerIndex = fields.layerIndex;
    this.layerKey = fields.layerKey;
    this.exitCode = fields.exitCode ?? undefined;
    this.reason = fields.reason;
    this.logTail = fields.logTail ?? [];
  }
}

/** Chooses the APIError subclass for a status: the one place statuses map to classes. */
export function apiErrorFor(
  status: number,
  code: string,
  message: string,
  requestId?: string,
  details?: unknown,
  options?: ErrorOptions,
): APIError {
  const Class =
    status === 400 || status === 422
      ? BadRequestError
      : status === 401
        ? AuthenticationError
        : status === 403
          ? PermissionDeniedError
          : status === 404
            ? NotFoundAPIError
            : status === 409
              ? ConflictError
              : status === 413
                ? PayloadTooLargeError
                : status === 429
                  ? RateLimitError
                  : status >= 500
                    ? InternalServerError
                    : APIError;
  return new Class(status, code, message, requestId, details, options);
}

/**
 * The image was built but a push to an external registry failed (decision 0019): `failed`
 * names each failed target with its registry's message; `pushes` has every target's outcome.
 */
export class ImagePushError extends KilnError {
  readonly imageId: string;
  readonly buildId: string | null;
  readonly pushes: readonly { reference: string; status: string; digest: string | null; message: string | null }[];
  readonly failed: readonly { reference: string; message: string | null }[];

  constructor(fields: {
    imageId: string;
    buildId: string | null;
    pushes: ImagePushError["pushes"];
    failed: ImagePushError["failed"];
  }) {
    const lines = fields.failed.map((f) => `  ${f.reference}: ${f.message ?? "not pushed"}`).join("\n");
    const how = fields.buildId ? `\n\nSee the full log: kiln logs ${fields.buildId}` : "";
    super(`Image ${fields.imageId} was built, but ${fields.failed.length} of ${fields.pushes.length} push(es) failed:\n${lines}${how}`);
    this.imageId = fields.imageId;
    this.buildId = fields.buildId;
    this.pushes = fields.pushes;
    this.failed = fields.failed;
  }
}
