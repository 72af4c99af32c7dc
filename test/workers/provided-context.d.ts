// Values the workers project's globalSetup (test/node/fleet-recorder-setup.ts) provides.
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the recording fleet endpoint on 127.0.0.1. */
    fleetRecorderUrl: string;
  }
}
