/**
 * The facts of a build that its provenance is made from (decision 0024), as the Build object
 * reports them (durable-objects/attestation-facts.ts).
 */
import type { LayerSpec } from "@kiln-build/protocol";

/** One layer of the build as the provenance records it. */
export type AttestedLayer = { index: number; key: string; state: string; digest: string | null; reference: string | null; spec: LayerSpec };

/** The facts of a build the provenance is made from. */
export type AttestationFacts = {
  buildId: string;
  workspaceId: string;
  workspaceName: string;
  origin: string;
  builderVersion: string;
  fleetId: string;
  attemptNo: number;
  /** The image: the top layer's key, manifest digest and pinned reference. */
  subject: { key: string; digest: string; reference: string };
  parentReference: string | null;
  layers: AttestedLayer[];
  createdMs: number;
  startedMs: number;
};

/** Why the Build object refuses a report. */
export type AttestationRefusal = "unknown_build" | "stale_attempt" | "unknown_layer";

/** The Build object's answer to a report (tagged: RPC drops error properties). */
export type AttestationFactsAnswer = { ok: true; facts: AttestationFacts } | { ok: false; error: AttestationRefusal };
