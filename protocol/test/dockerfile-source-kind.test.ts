import { describe, expect, it } from "vitest";
import { sourceKind } from "../src/dockerfile/source-kind.ts";

describe("sourceKind follows BuildKit's Git / URL / local rules", () => {
  it.each([
    ["git@github.com:moby/buildkit.git", "git"],
    ["git@github.com:moby/buildkit.git#v0.13.0:docs", "git"],
    ["github.com:moby/buildkit", "git"],
    ["https://github.com/moby/buildkit.git", "git"],
    ["https://github.com/moby/buildkit.git#main", "git"],
    ["ssh://git@example.com/repo", "git"],
    ["git://example.com/repo", "git"],
    ["https://example.com/file.tar.gz", "url"],
    ["http://example.com/x.git.tar", "url"],
    ["github.com/moby/buildkit", "local"],
    ["./git@host:path", "local"],
    ["C:/path", "local"],
    ["ftp://example.com/file", "local"],
    ["vendor.tar.gz", "local"],
    ["dir/*.txt", "local"],
  ])("%j is %s", (src, kind) => {
    expect(sourceKind(src)).toBe(kind);
  });
});
