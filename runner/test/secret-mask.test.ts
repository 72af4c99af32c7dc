// Secret masking of streamed output: values split across pieces at every position,
// overlapping secrets, multi-line values and the minimum length.
import { describe, expect, it } from "vitest";
import { MASK, SecretMasker } from "../src/secret-mask.ts";

describe("SecretMasker", () => {
  it("masks every occurrence, longest value first", () => {
    const masker = new SecretMasker(["hunter22", "hunter22-extended"]);
    expect(masker.mask("a hunter22-extended b hunter22 c")).toBe(`a ${MASK} b ${MASK} c`);
  });

  it("ignores values shorter than the minimum, so env-style secrets do not wreck the log", () => {
    const masker = new SecretMasker(["1", "abc", "long-enough"]);
    expect(masker.mask("1 abc long-enough")).toBe(`1 abc ${MASK}`);
    expect(new SecretMasker(["abc"], 1).mask("xabcx")).toBe(`x${MASK}x`);
  });

  it("masks each long line of a multi-line value (a re-indented key file)", () => {
    const key = '{\n  "private_key": "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBg",\n  "client_email": "svc@proj.iam.gserviceaccount.com"\n}';
    const masker = new SecretMasker([key]);
    const out = masker.mask('printed: "private_key": "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBg",');
    expect(out).not.toContain("MIIEvQIBADANBg");
  });

  it("never releases a secret split across stream pieces, at any split point", () => {
    const secret = "s3cr3t-VALUE-42";
    const text = `before ${secret} middle ${secret}${secret} after`;
    const masker = new SecretMasker([secret]);
    for (let cut = 0; cut <= text.length; cut++) {
      for (const step of [1, 3, 7]) {
        const stream = masker.stream();
        let out = stream.push(text.slice(0, cut));
        for (let i = cut; i < text.length; i += step) out += stream.push(text.slice(i, i + step));
        out += stream.end();
        expect(out).toBe(`before ${MASK} middle ${MASK}${MASK} after`);
      }
    }
  });

  it("holds back only what could still become a secret", () => {
    const stream = new SecretMasker(["password123"]).stream();
    expect(stream.push("line one\nthe pass")).toBe("line one\nthe ");
    expect(stream.push("port is here\n")).toBe("passport is here\n");
    expect(stream.end()).toBe("");
  });
});
