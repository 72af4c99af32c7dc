// Vitest globalSetup of the `workers` project: one recording fleet endpoint for every test
// file, its URL handed to the tests through `provide` / `inject("fleetRecorderUrl")`.
import type { TestProject } from "vitest/node";
import { startFleetRecorder } from "./fleet-recorder.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the recording fleet endpoint (also declared for the workers tests in test/workers/provided-context.d.ts). */
    fleetRecorderUrl: string;
  }
}

/** Starts the recorder; the returned function stops it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const recorder = await startFleetRecorder();
  project.provide("fleetRecorderUrl", recorder.url);
  return () => recorder.close();
}
