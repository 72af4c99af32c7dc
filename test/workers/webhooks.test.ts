// Standard Webhooks: the specification's own test vectors (test/vectors/standard-webhooks.json)
// against workers/protocol/webhooks.ts, inside workerd.

import { signWebhook, verifyWebhook } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import vectors from "../vectors/standard-webhooks.json";

type Case = (typeof vectors.verify.cases)[number] &
  Partial<{
    drop: string;
    setTimestamp: string;
    setSignature: string;
    truncateSignature: number;
    secretPrefix: string;
    signatureList: string[];
  }>;

describe("Standard Webhooks vectors", () => {
  for (const v of vectors.sign) {
    it(`signs: ${v.name}`, () => {
      const headers = signWebhook(v.secret, v.msgId, v.payload, new Date(v.timestamp * 1000));
      expect(headers).toEqual({ "webhook-id": v.msgId, "webhook-timestamp": String(v.timestamp), "webhook-signature": v.signature });
    });
  }

  const { secret, msgId, payload } = vectors.verify;
  for (const c of vectors.verify.cases as Case[]) {
    it(`verifies: ${c.name}`, () => {
      const now = new Date(Date.now() + c.timestampOffsetSeconds * 1000);
      const headers: Record<string, string> = { ...signWebhook(secret, msgId, payload, now) };
      const valid = headers["webhook-signature"]!;
      if (c.drop) delete headers[c.drop];
      if (c.setTimestamp) headers["webhook-timestamp"] = c.setTimestamp;
      if (c.setSignature !== undefined) headers["webhook-signature"] = c.setSignature;
      if (c.truncateSignature) headers["webhook-signature"] = valid.slice(0, c.truncateSignature);
      if (c.signatureList) headers["webhook-signature"] = c.signatureList.map((s) => (s === "$valid" ? valid : s)).join(" ");
      const result = verifyWebhook(`${c.secretPrefix ?? ""}${secret}`, headers, payload);
      expect(result.ok).toBe(c.valid);
      if (result.ok) expect(result.id).toBe(msgId);
    });
  }

  it("classifies refusals", () => {
    const headers = signWebhook(secret, msgId, payload, new Date(Date.now() - 10 * 60_000));
    expect(verifyWebhook(secret, headers, payload)).toEqual({ ok: false, error: "stale_timestamp" });
    expect(verifyWebhook(secret, { ...signWebhook(secret, msgId, payload), "webhook-signature": "v1,AAAA" }, payload)).toEqual({
      ok: false,
      error: "bad_signature",
    });
    expect(verifyWebhook(secret, {}, payload)).toEqual({ ok: false, error: "missing_headers" });
    expect(verifyWebhook(secret, signWebhook(secret, msgId, payload), `${payload} `)).toEqual({ ok: false, error: "bad_signature" });
  });
});
