/**
 * Whether this machine can ever run a job: a platform it does not build or GPUs it lacks fail
 * the job at once as an infra failure, which the orchestrator retries on another fleet.
 */
import type { FleetPlatforms, Job } from "@kiln-build/protocol";
import { JobFailure } from "./failure.ts";
import type { GpuPool } from "./gpu.ts";
import { platformProblem } from "./platforms.ts";

/** Why `job` can never run here, as the job's failure; null when it can. `platforms` absent: not checked. */
export function machineMismatch(job: Job, platforms: FleetPlatforms | undefined, gpuPool: Pick<GpuPool, "check">): JobFailure | null {
  const platformIssue = platforms ? platformProblem(platforms, job.layers[0]?.platform) : null;
  if (platformIssue) return new JobFailure("infra", platformIssue, { layerKey: job.layers[0]!.key });
  for (const layer of job.layers) {
    const problem = layer.gpu ? gpuPool.check(layer.gpu) : null;
    if (problem) {
      return new JobFailure("infra", `${problem}; the orchestrator should send this job to a fleet with matching GPUs`, {
        layerKey: layer.key,
      });
    }
  }
  return null;
}
