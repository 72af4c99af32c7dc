/**
 * Versions every Kiln part reports. All packages are released together under one version
 * number (a test checks each package.json against it); the protocol version changes only
 * when the runner job or its events change incompatibly.
 */

/** The release of the Kiln packages (SDK, runner, protocol). */
export const KILN_VERSION = "0.2.0";

/**
 * The runner protocol version: the shape and meaning of a dispatched job and of the events
 * a runner reports. A runner refuses a job whose version it does not speak. Version 2 added
 * the job's `push` (and jobs without layers that only push) and the `push_result` event;
 * version 3 made a layer's `context` name a context manifest whose files the runner fetches
 * as blobs (docs/decisions/0022), where it named one tarball. The reports posted beside the
 * events (`sbom`, `push_attestations`, `push_attestations_result`, `base_digests`; decision 0024)
 * are additive: an orchestrator without them answers 400 and the runner carries on, so they
 * change no version.
 */
export const PROTOCOL_VERSION = 3;
