/**
 * The SDK's error hierarchy. Every error the SDK raises on purpose is a `KilnError`,
 * so callers can catch one class; subclasses say what kind of problem it was.
 */
import { InvalidError, KilnError, VersionError } from "@kiln-build/protocol";

export { InvalidError, KilnError, VersionError };
/** A local file, directory, module or remote object the call refers to does not exist. */
export declare class NotFoundError extends KilnError {}
/** An operation that is valid in general cannot run in the current state. */
export declare class ExecutionError extends KilnError {}
/** The Kiln API answered with an error status. `status`, `code` and `requestId` identify it. */
export declare class APIError extends KilnError {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, requestId?: string, details?: unknown, options?: ErrorOptions);
}
/** 400/422: the server rejected the request's content. */
export declare class BadRequestError extends APIError {}
/** 401: missing or invalid token (set KILN_TOKEN or pass `token`). */
export declare class AuthenticationError extends APIError {}
/** 403: the token lacks a scope. */
export declare class PermissionDeniedError extends APIError {}
/** 404: no such object in this workspace. */
export declare class NotFoundAPIError extends APIError {}
/** 409: the request conflicts with the object's current state. */
export declare class ConflictError extends APIError {}
/** 413: a body larger than the server accepts. */
export declare class PayloadTooLargeError extends APIError {}
/** 429: rate limited; retried automatically, honouring Retry-After. */
export declare class RateLimitError extends APIError {}
/** 5xx: the server failed; retried automatically. */
export declare class InternalServerError extends APIError {}
/** The server could not be reached (connection refused, reset, DNS, timeout). */
export declare class APIConnectionError extends KilnError {}
/** An image build failed: which layer, the exit code, the last lines of output. */
export declare class ImageBuildError extends KilnError {
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
  });
}
/** Chooses the APIError subclass for a status: the one place statuses map to classes. */
export declare function apiErrorFor(
  status: number,
  code: string,
  message: string,
  requestId?: string,
  details?: unknown,
  options?: ErrorOptions,
): APIError;
//# sourceMappingURL=errors.d.ts.map
