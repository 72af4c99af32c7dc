/**
 * The push step of a job (decision 0019): after its layers are built and published (or at
 * once, for a push-only job), the image is copied to each target in turn and each target's
 * outcome is reported as a `push_result` event. A target that fails (its login refused, its
 * registry down) is reported with the registry's message and the others still proceed; the
 * job itself only fails when it is stopped.
 */
import type { Job, JobPush } from "@kiln-build/protocol";
import { copyImage } from "./external-push.ts";
import { type AttestationEvents, attestTarget } from "./push-attestations.ts";
import { type BaseLoginOptions, pushLogin, type RegistryLogin } from "./registry-auth.ts";

/** A target's login, or why it could not be had (reported as that target's failure). */
export type PushLogin = RegistryLogin | null | Error;

/** One target's outcome, as the `push_result` event carries it. */
export type PushOutcome = { reference: string; status: "succeeded" | "failed"; digest: string | null; message: string | null };

/** Resolves every target's login now (an ECR token is fetched), so their secrets join the masker before any log. */
export async function resolvePushLogins(job: Job, options: BaseLoginOptions): Promise<PushLogin[]> {
  const targets = job.push?.targets ?? [];
  return Promise.all(targets.map((t) => pushLogin(t, job.secrets, options).catch((error: unknown) => toError(error))));
}

/** What the pushes need from the job run. */
export type PushRun = {
  push: JobPush;
  /** The built-in registry's reference of the image, pinned by digest. */
  source: string;
  /** The job's login to the built-in registry and whether it is plain http. */
  sourceLogin: RegistryLogin;
  sourceInsecure: boolean;
  logins: readonly PushLogin[];
  /** Hosts that may be reached over plain http (`--insecure-registry`). */
  insecureHosts: readonly string[];
  fetch: typeof fetch;
  signal: AbortSignal;
  log: (line: string) => void;
  /** Masks secrets in a message before it leaves the runner. */
  mask: (text: string) => string;
  report: (outcome: PushOutcome) => void;
  /**
   * Copy the image's attestations to each target pushed (decision 0024), once `delivered()` says
   * its push_result got through: the orchestrator signs only a digest the attempt reported.
   */
  attestations?: { events: AttestationEvents; giveUp: AbortSignal; delivered: () => Promise<unknown> };
};

/** Copies the image to every target, one after another; throws only when the job is stopped. */
export async function runPushes(run: PushRun): Promise<void> {
  for (const [i, target] of run.push.targets.entries()) {
    if (run.signal.aborted) throw run.signal.reason;
    run.log(`pushing ${run.source} to ${target.reference}`);
    const login = run.logins[i];
    let outcome: PushOutcome;
    const host = target.reference.split("/")[0]!;
    try {
      if (login instanceof Error) throw login;
      const digest = await copyImage(
        { reference: run.source, session: { login: run.sourceLogin, insecure: run.sourceInsecure } },
        { reference: target.reference, login: login ?? null, insecure: run.insecureHosts.includes(host) },
        run.push,
        { fetch: run.fetch, signal: run.signal, log: run.log },
      );
      outcome = { reference: target.reference, status: "succeeded", digest, message: null };
      run.log(`pushed ${target.reference}@${digest}`);
    } catch (error) {
      if (run.signal.aborted) throw run.signal.reason;
      const message = run.mask(toError(error).message).slice(0, 4096);
      outcome = { reference: target.reference, status: "failed", digest: null, message };
      run.log(`push to ${target.reference} failed: ${message}`);
    }
    run.report(outcome);
    if (outcome.digest && run.attestations && !(login instanceof Error)) {
      const { events, giveUp, delivered } = run.attestations;
      await delivered();
      const session = { login: login ?? null, insecure: run.insecureHosts.includes(host), fetch: run.fetch, signal: run.signal };
      await attestTarget({ reference: target.reference, digest: outcome.digest }, session, events, giveUp, run.log, run.mask);
    }
  }
}

/** `repo:tag` of a published layer pinned to its digest: `repo@digest`. */
export function pinnedSource(target: string, digest: string): string {
  const slash = target.lastIndexOf("/");
  const colon = target.lastIndexOf(":");
  return `${colon > slash ? target.slice(0, colon) : target}@${digest}`;
}

// A fetch failure's message is "fetch failed"; its cause says why (a certificate not trusted, a refused connection).
function toError(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const cause = error.cause instanceof Error ? error.cause.message : null;
  return cause && !error.message.includes(cause) ? new Error(`${error.message}: ${cause}`) : error;
}
