/**
 * The state `npm run bench:load` measures against: a workspace with its client tokens and a
 * fleet, a built 5-layer chain tagged public (cached resolves, badges), and a running build
 * whose log takes the runner's events and the clients' polls. The bench plays the runner (its
 * layers: a tiny image pushed through `/v2` for each, bench/fake-runner-push.ts).
 */
import { newWebhookSecret } from "@kiln-build/protocol";
import type { FleetRecorder } from "../test/node/fleet-recorder.ts";
import { chainOf, type Job, type LoadApi } from "./load-api.ts";
import { API_CLIENTS } from "./load-config.ts";

/** What the traffic classes need: `tokens[0]` is the abusive client's, the rest the API clients'. */
export type LoadSetup = {
  workspace: string;
  tokens: string[];
  signingSecret: string;
  chain: ReturnType<typeof chainOf>;
  liveJob: Job;
  liveBuild: string;
};

/** Creates the workspace, tokens, fleet, the built chain and the running build. */
export async function setUpLoad({ api, must, report, buildLayers }: LoadApi, recorder: FleetRecorder): Promise<LoadSetup> {
  const workspace = `load-${Date.now().toString(36)}`;
  await must(api("POST", "/v1/workspaces", { json: { name: workspace } }), 201, "create workspace");
  const admin = { "x-kiln-workspace": workspace };
  const tokens: string[] = [];
  for (let i = 0; i <= API_CLIENTS; i++) {
    tokens.push(
      (
        await must(
          api("POST", "/v1/tokens", {
            headers: admin,
            json: { name: `client-${i}`, scopes: ["images:read", "images:write", "tags:write"] },
          }),
          201,
          "create token",
        )
      ).token,
    );
  }
  const signingSecret = newWebhookSecret();
  await must(
    api("POST", "/v1/fleets", {
      headers: admin,
      json: { name: "recorder", url: `${recorder.url}/fleet/load/accept`, maxConcurrentBuilds: 8, signingSecret },
    }),
    201,
    "register fleet",
  );

  // A built 5-layer chain (the bench plays the runner), tagged public: cached resolves and badges.
  const chain = chainOf(5, workspace);
  const first = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chain } }),
    202,
    "first submission",
  );
  const [dispatched] = await recorder.waitFor("load", 1, 30_000);
  if (!dispatched) throw new Error("the first build was never dispatched");
  const built = JSON.parse(dispatched.body) as Job;
  await report(signingSecret, built, { type: "accepted" });
  await buildLayers(signingSecret, built);
  await report(signingSecret, built, { type: "succeeded" });
  const cached = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chain } }),
    200,
    "cached resolve",
  );
  await must(api("PUT", "/v1/tags/main", { token: tokens[0], json: { imageId: cached.id, public: true } }), 200, "tag");
  void first;

  // A running build: its log receives the runner's events and the clients' polls.
  const live = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chainOf(2, `${workspace}-live`) } }),
    202,
    "live submission",
  );
  const liveJob = JSON.parse((await recorder.waitFor("load", 2, 30_000))[1]!.body) as Job;
  await report(signingSecret, liveJob, { type: "accepted" });
  const liveBuild = live.buildId as string;
  return { workspace, tokens, signingSecret, chain, liveJob, liveBuild };
}
