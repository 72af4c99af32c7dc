import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { InvalidError } from "../src/errors.ts";
import { collectSecrets, Secret } from "../src/secret.ts";

describe("Secret", () => {
  it("names a server-side secret and its required keys", () => {
    const secret = Secret.fromName("gh-token", { requiredKeys: ["GITHUB_TOKEN"] });
    expect(secret.ref).toBe("gh-token");
    expect(secret.requiredKeys).toEqual(["GITHUB_TOKEN"]);
    expect(String(secret)).toBe("Secret.fromName('gh-token')");
  });

  it("identifies an inline secret by its key names only, never its values", () => {
    const secret = Secret.fromDict({ B: "2", A: "hunter2", C: null });
    // sha256("A,B"): key names only, so the same keys with other values give the same ref.
    expect(secret.ref).toBe(`inline-${createHash("sha256").update("A,B").digest("hex").slice(0, 32)}`);
    expect(Secret.fromDict({ A: "other", B: "values" }).ref).toBe(secret.ref);
    expect(String(secret)).not.toContain("hunter2");
    expect(secret.inlineValues()).toEqual({ A: "hunter2", B: "2" });
  });

  it.each([[""], ["has space"], ["-leading"], ["x".repeat(65)]])("rejects the name %j", (name) => {
    expect(() => Secret.fromName(name)).toThrow(InvalidError);
  });

  it("rejects non-string values and bad keys", () => {
    expect(() => Secret.fromDict({ A: 1 as unknown as string })).toThrow("Secret.fromDict values must be strings. Invalid key: 'A'.");
    expect(() => Secret.fromDict({ "1BAD": "x" })).toThrow(InvalidError);
    expect(() => Secret.fromName("ok", { requiredKeys: ["not valid"] })).toThrow(InvalidError);
  });

  it("collectSecrets requires Secret instances and appends env as an inline secret", () => {
    expect(() => collectSecrets(["plain"])).toThrow("All secrets of an Image need to be Secret instances");
    const list = collectSecrets([Secret.fromName("a")], { X: "1" });
    expect(list.map((s) => s.ref)).toEqual(["a", Secret.fromDict({ X: "" }).ref]);
  });
});
