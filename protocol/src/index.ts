/**
 * The Kiln protocol: everything that crosses a process boundary between the SDK, the
 * orchestrator and the runners, defined once. Layer specs and layer keys, the runner job
 * and its events, Standard Webhooks signing, digests, names and the protocol version.
 * Depends on no other Kiln package and on no Node-only API: it runs on Node and workerd.
 * The Dockerfile front-end is the subpath `@kiln-build/protocol/dockerfile`.
 */

export * from "./api.ts";
export * from "./attestation.ts";
export * from "./builder-version.ts";
export * from "./context-blob-batch.ts";
export * from "./context-manifest.ts";
export * from "./digest.ts";
export * from "./errors.ts";
export * from "./gpu.ts";
export * from "./image-index.ts";
export * from "./layer-spec.ts";
export * from "./names.ts";
export * from "./platform.ts";
export * from "./push.ts";
export * from "./push-attestation.ts";
export * from "./runner-protocol.ts";
export * from "./timeline.ts";
export * from "./version.ts";
export * from "./webhook-subscriptions.ts";
export * from "./webhooks.ts";
