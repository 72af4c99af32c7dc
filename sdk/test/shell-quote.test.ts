import { describe, expect, it } from "vitest";
import { shellJoin, shellQuote } from "../src/shell-quote.ts";

// Expected values are what CPython's shlex.quote / shlex.join return for the same input.
describe("shellQuote matches Python's shlex.quote", () => {
  it.each([
    ["", "''"],
    ["abc", "abc"],
    ["a@b%c+d=e:f,g./-h_9", "a@b%c+d=e:f,g./-h_9"],
    ["a b", "'a b'"],
    ["it's", `'it'"'"'s'`],
    ["''", `''"'"''"'"''`],
    ["'a", `''"'"'a'`],
    ["$PATH", "'$PATH'"],
    ["numpy>=1.0", "'numpy>=1.0'"],
    ["pandas[sql]", "'pandas[sql]'"],
    ["é", "'é'"],
    ["tab\there", "'tab\there'"],
  ])("quote(%j) -> %s", (input, expected) => {
    expect(shellQuote(input)).toBe(expected);
  });

  it("joins quoted words with single spaces", () => {
    expect(shellJoin(["git", "curl", "a b", ""])).toBe("git curl 'a b' ''");
  });
});
