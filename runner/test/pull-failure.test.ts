// Which failed builds are pulls this job's credentials cannot make (never retried, the image
// named) and which are not (transport errors, a failing step's own words).
import { describe, expect, it } from "vitest";
import { pullRefusal } from "../src/pull-failure.ts";

describe("pullRefusal", () => {
  it("names the image buildah could not pull with the job's credentials", () => {
    const tail = [
      "STEP 1/1: FROM 127.0.0.1:37265/acme/privbase:v1",
      "Trying to pull 127.0.0.1:37265/acme/privbase:v1...",
      "Error: creating build container: initializing source docker://127.0.0.1:37265/acme/privbase:v1: reading manifest v1 in 127.0.0.1:37265/acme/privbase: errors:",
      "denied: requested access to the resource is denied",
      "unauthorized: insufficient scope",
      "",
    ];
    expect(pullRefusal(tail)).toBe(
      "could not pull 127.0.0.1:37265/acme/privbase:v1: the registry refused this job's credentials (denied: requested access to the resource is denied)",
    );
  });

  it("recognises BuildKit's wording", () => {
    expect(
      pullRefusal([
        "ERROR: failed to solve: docker.io/library/priv:1: failed to resolve source metadata for docker.io/library/priv:1: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
      ]),
    ).toMatch(/^could not pull docker\.io\/library\/priv:1: the registry refused this job's credentials/);
  });

  it("leaves transport errors, missing manifests and a step's own output to the other classifications", () => {
    expect(
      pullRefusal([
        "Error: creating build container: initializing source docker://reg.example.com/x/y:1: reading manifest 1 in reg.example.com/x/y: manifest unknown: manifest unknown",
      ]),
    ).toBeNull();
    expect(
      pullRefusal([
        'Error: creating build container: initializing source docker://reg.example.com/x/y:1: pinging container registry reg.example.com: Get "https://reg.example.com/v2/": dial tcp: connection refused',
      ]),
    ).toBeNull();
    expect(
      pullRefusal(["STEP 2/2: RUN cat /secret", "cat: /secret: Permission denied", "Error: committing container: not found"]),
    ).toBeNull();
  });
});
