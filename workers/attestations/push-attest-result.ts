/**
 * The runner's `push_attestations_result` report (decision 0024, external registries): what it
 * attached to a target after `push_attestations`. The Build object vouches for the attempt,
 * target and digest exactly as for the request; the outcome is then shown with the target's
 * push (`GET /v1/images/:id` `pushes[].attestations`).
 */
import { PushAttestationsResultSchema } from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { imagePushes } from "../db/schema/pushes.ts";
import { badRequest } from "../errors.ts";
import { vouchedPush } from "./push-attest.ts";

/** Accepts a verified `push_attestations_result` body and records it with the target's push. */
export async function acceptPushAttestationsResult(env: Env, body: unknown): Promise<void> {
  const parsed = PushAttestationsResultSchema.safeParse(body);
  if (!parsed.success) throw badRequest("The body is not a push_attestations_result report.", parsed.error.issues);
  const { status, count, via, message } = parsed.data;
  const facts = await vouchedPush(env, parsed.data);
  await drizzle(env.DB)
    .update(imagePushes)
    .set({ attestations: { status, count, via, message } })
    .where(and(eq(imagePushes.imageId, facts.imageId), eq(imagePushes.position, facts.position)))
    .run();
}
