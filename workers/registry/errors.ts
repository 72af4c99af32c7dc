/**
 * OCI Distribution error codes and their one mapping to the spec's body,
 * `{ "errors": [{ "code", "message", "detail" }] }`. `RegistryError` extends the Worker's
 * `ApiError`, so anything that escapes to the root app still answers with the right status.
 */
import { ApiError } from "../errors.ts";

/** Every error code of the OCI Distribution Spec v1.1 (plus distribution's UNSUPPORTED/TOOMANYREQUESTS). */
export type RegistryErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "RANGE_INVALID";

/** A registry failure with its spec code; rendered by `registryErrorBody`. */
export class RegistryError extends ApiError {
  constructor(
    status: ApiError["status"],
    code: RegistryErrorCode,
    message: string,
    detail?: unknown,
    headers: Record<string, string> = {},
  ) {
    super(status, code, message, detail, headers);
  }
}

/** The spec's error body for one error. */
export function registryErrorBody(error: ApiError): { errors: { code: string; message: string; detail?: unknown }[] } {
  return { errors: [{ code: error.code, message: error.message, ...(error.details === undefined ? {} : { detail: error.details }) }] };
}

/** 404 BLOB_UNKNOWN. */
export const blobUnknown = (digest: string) => new RegistryError(404, "BLOB_UNKNOWN", "blob unknown to registry", { digest });
/** 404 BLOB_UPLOAD_UNKNOWN. */
export const uploadUnknown = () => new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
/** 400 BLOB_UPLOAD_INVALID. */
export const uploadInvalid = (message: string) => new RegistryError(400, "BLOB_UPLOAD_INVALID", message);
/** 400 DIGEST_INVALID: the content does not match the digest (nothing was kept). */
export const digestInvalid = (message: string, detail?: unknown) => new RegistryError(400, "DIGEST_INVALID", message, detail);
/** 404 MANIFEST_UNKNOWN. */
export const manifestUnknown = (reference: string) =>
  new RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown to registry", { reference });
/** 400 MANIFEST_INVALID. */
export const manifestInvalid = (message: string, detail?: unknown) => new RegistryError(400, "MANIFEST_INVALID", message, detail);
/** 400 MANIFEST_BLOB_UNKNOWN: the manifest refers to something this repository does not hold. */
export const manifestBlobUnknown = (digest: string) =>
  new RegistryError(400, "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to this repository", { digest });
/** 400 NAME_INVALID. */
export const nameInvalid = (name: string) => new RegistryError(400, "NAME_INVALID", "invalid repository name", { name });
/** 404 NAME_UNKNOWN. */
export const nameUnknown = (name: string) => new RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry", { name });
/** 416 with the upload's current range, so the client can resume. */
export const rangeInvalid = (message: string, headers: Record<string, string>) =>
  new RegistryError(416, "RANGE_INVALID", message, undefined, headers);
/** 405 UNSUPPORTED. */
export const unsupported = (message: string) => new RegistryError(405, "UNSUPPORTED", message);
/** 401 UNAUTHORIZED with a Bearer challenge (`WWW-Authenticate`). */
export const registryUnauthorized = (challenge: string, message = "authentication required") =>
  new RegistryError(401, "UNAUTHORIZED", message, undefined, { "www-authenticate": challenge });
