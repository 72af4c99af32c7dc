import { describe, expect, it } from "vitest";
import { mountSources, parseCsvRecord, parseMount } from "../src/dockerfile/run-mount.ts";

const same = (w: string) => w;

describe("parseCsvRecord behaves like Go's encoding/csv for one record", () => {
  it.each([
    ["type=bind,source=a", ["type=bind", "source=a"]],
    ['"source=a,b",target=/x', ["source=a,b", "target=/x"]],
    ['"a""b",c', ['a"b', "c"]],
    ["a,", ["a", ""]],
  ])("%j", (line, fields) => {
    expect(parseCsvRecord(line)).toEqual(fields);
  });

  it.each(["", 'a"b', '"ab', '"a"b'])("rejects %j", (line) => {
    expect(() => parseCsvRecord(line)).toThrow(/failed to parse csv mounts/);
  });
});

describe("parseMount", () => {
  it("defaults to a read-only bind mount of the context root", () => {
    expect(parseMount("target=/x", same)).toEqual({ type: "bind", from: "", source: "", target: "/x", readOnly: true });
  });

  it("reads every spelling of the keys and expands values", () => {
    const m = parseMount("type=bind,src=$D,dst=/x,rw", (w) => w.replace("$D", "dir"));
    expect(m).toEqual({ type: "bind", from: "", source: "dir", target: "/x", readOnly: false });
  });

  it.each([
    ["type=volume,target=/x", /unsupported mount type "volume"/],
    ["type=bind,target=/x,uid=1", /uid not allowed for "bind" type mounts/],
    ["type=bind,required", /unexpected key 'required' for mount type 'bind'/],
    ["type=secret", /one of source, target required/],
    ["type=bind,bogus=1", /unexpected key 'bogus'/],
    ["type=bind,novalue", /must be a key=value pair/],
    ["type=cache,target=/c,sharing=weird", /unsupported sharing value/],
  ])("rejects %j", (spec, message) => {
    expect(() => parseMount(spec, same)).toThrow(message);
  });

  it("accepts secrets marked required", () => {
    expect(parseMount("type=secret,id=npm,required", same).type).toBe("secret");
  });
});

describe("mountSources", () => {
  it("returns each mount's from= before expansion", () => {
    expect(mountSources(["type=bind,from=build,target=/x", "type=cache,target=/c", "FROM=Other"])).toEqual(["build", "", "Other"]);
  });
  it("rejects variables in from=", () => {
    expect(() => mountSources(["from=${STAGE}"])).toThrow(/doesn't support variable expansion/);
  });
});
