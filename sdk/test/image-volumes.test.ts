// Modal's `volumes` on runCommands lower to build cache mounts: one
// `--mount=type=cache,id=<name>,target=<path>` per volume on every RUN line of the layer,
// sorted by path, so the declaration (not the contents) is part of the layer key.
import { describe, expect, it } from "vitest";
import { InvalidError, Volume } from "../src/index.ts";
import { base, commandsOf } from "./image-helpers.ts";

describe("runCommands({ volumes })", () => {
  it("lowers each volume to a cache mount on every RUN line, sorted by path", async () => {
    const pip = Volume.fromName("pip-cache");
    const image = base().runCommands("pip download torch -d /root/.cache/pip", "ls /var/cache/apt", {
      volumes: { "/var/cache/apt": Volume.fromName("apt.v1"), "/root/.cache/pip": pip },
    });
    const mounts = "--mount=type=cache,id=pip-cache,target=/root/.cache/pip --mount=type=cache,id=apt.v1,target=/var/cache/apt";
    expect(await commandsOf(image)).toEqual([
      "FROM base",
      `RUN ${mounts} pip download torch -d /root/.cache/pip`,
      `RUN ${mounts} ls /var/cache/apt`,
    ]);
  });

  it("puts the mount declaration in the layer key: another name or path is another layer", async () => {
    const key = async (volumes: Record<string, Volume> | undefined) =>
      (await base().runCommands("true", { volumes }).describe()).layers.at(-1)!.key;
    const plain = await key(undefined);
    const pip = await key({ "/root/.cache/pip": Volume.fromName("pip") });
    expect(pip).not.toBe(plain);
    expect(await key({ "/root/.cache/pip": Volume.fromName("pip") })).toBe(pip);
    expect(await key({ "/root/.cache/pip": Volume.fromName("other") })).not.toBe(pip);
    expect(await key({ "/tmp/pip": Volume.fromName("pip") })).not.toBe(pip);
  });

  it("refuses bad names, paths and values before any network call", () => {
    for (const name of ["", "a,b", "a=b", "a b", "-x", "x".repeat(65)]) expect(() => Volume.fromName(name)).toThrow(InvalidError);
    expect(() => Volume.fromName("ok", { createIfMissing: true } as never)).toThrow(/no options/);
    for (const target of ["relative", "/", "/a,b", "/a b", "/a/../b", "/a=b", '/a"b']) {
      expect(() => base().runCommands("true", { volumes: { [target]: Volume.fromName("v") } })).toThrow(InvalidError);
    }
    expect(() => base().runCommands("true", { volumes: { "/c": "pip" as never } })).toThrow(/must be a Volume/);
    expect(() => base().runCommands("true", { volumes: [] as never })).toThrow(/must be an object/);
    // runFunction has no cache mounts yet: refused with the way out, not ignored.
    expect(() => base().runFunction(() => {}, { volumes: {} } as never)).toThrow(/only runCommands mounts volumes/);
  });
});
