/**
 * The protocol-version check a verified dispatch gets before anything else. A job from an
 * orchestrator of another protocol version may differ anywhere, so validating it first would
 * answer with field errors that hide the real problem; this answers with what to upgrade.
 * The orchestrator shows the message on the build (docs/protocol.md, "Versions").
 */
import { KILN_VERSION, PROTOCOL_VERSION } from "@kiln-build/protocol";

/** The Kiln release in an orchestrator's `user-agent` (`kiln-orchestrator/0.2.0`), or null when it names none. */
export function orchestratorRelease(userAgent: string | undefined): string | null {
  const match = /^kiln-orchestrator\/(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)(?:\s|$)/.exec(userAgent ?? "");
  return match ? match[1]! : null;
}

/**
 * Why this runner refuses `body`, or null when the job speaks this runner's protocol version.
 * A job without a valid `protocolVersion` is refused too: it comes from an orchestrator that
 * predates versioned jobs, and whatever else changed is unknown.
 */
export function protocolRefusal(body: unknown, orchestrator: string | null): string | null {
  const fields = typeof body === "object" && body !== null ? (body as { kind?: unknown; protocolVersion?: unknown }) : {};
  // The orchestrator's signing probe (`kiln doctor`, workers/fleet-probe.ts) is signed but is no
  // job and carries no version; it expects 400 invalid_job as proof that the signature passed.
  if (fields.kind === "kiln.probe" && fields.protocolVersion === undefined) return null;
  const version = fields.protocolVersion;
  if (version === PROTOCOL_VERSION) return null;
  const valid = typeof version === "number" && Number.isInteger(version) && version > 0;
  const jobSide = valid
    ? `speaks Kiln runner protocol ${version}`
    : version === undefined
      ? "carries no protocolVersion (its orchestrator predates versioned jobs)"
      : `carries an invalid protocolVersion (${String(JSON.stringify(version)).slice(0, 40)})`;
  const runnerSide = `this runner (@kiln-build/runner ${KILN_VERSION}) speaks protocol ${PROTOCOL_VERSION}`;
  // The orchestrator names its release in its user-agent; without it the reader fills it in.
  const install = `npm install -g @kiln-build/runner@${orchestrator ?? "<the orchestrator's Kiln version>"}`;
  const fix =
    valid && version > PROTOCOL_VERSION
      ? `Upgrade the runner to the orchestrator's release (${install}) and restart it, or run an orchestrator that speaks protocol ${PROTOCOL_VERSION}.`
      : `Upgrade the orchestrator to Kiln ${KILN_VERSION}, or install the runner of the orchestrator's release (${install}) and restart it.`;
  return `The job ${jobSide}, but ${runnerSide}. ${fix}`;
}
