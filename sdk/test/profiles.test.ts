import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveConnection } from "../src/cli/config.ts";
import { CliError } from "../src/cli/output.ts";
import { KilnClient } from "../src/client.ts";
import { profileDefaults, readProfiles, writeProfiles } from "../src/profiles.ts";

let dir: string;
let file: string;
const saved = { ...process.env };

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kiln-profiles-"));
  file = path.join(dir, "kiln", "config.toml");
  writeProfiles(
    {
      active: "prod",
      profiles: {
        prod: { server: "https://kiln.example.com", token: "kiln_api_prod" },
        dev: { server: "http://127.0.0.1:8787", token: "kiln_api_dev" },
      },
    },
    file,
  );
  for (const name of ["KILN_TOKEN", "KILN_SERVER_URL", "KILN_PROFILE"]) delete process.env[name];
  process.env.KILN_CONFIG = file;
});

afterEach(() => {
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

describe("the profiles file", () => {
  it("is written owner-only and read back", () => {
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readProfiles(file).profiles.dev).toEqual({ server: "http://127.0.0.1:8787", token: "kiln_api_dev" });
  });

  it("an unreadable file gives the SDK no defaults, and the CLI an error naming it", () => {
    writeFileSync(file, "active = [unterminated");
    expect(profileDefaults()).toEqual({});
    expect(() => resolveConnection({})).toThrow(CliError);
    expect(() => resolveConnection({})).toThrow(file);
  });
});

describe("which server and token a command uses", () => {
  it("takes the active profile, then KILN_PROFILE, then --profile", () => {
    expect(resolveConnection({})).toMatchObject({ server: "https://kiln.example.com", token: "kiln_api_prod", source: "profile" });
    process.env.KILN_PROFILE = "dev";
    expect(resolveConnection({})).toMatchObject({ token: "kiln_api_dev", profile: "dev" });
    expect(resolveConnection({ profile: "prod" })).toMatchObject({ token: "kiln_api_prod" });
    expect(() => resolveConnection({ profile: "nope" })).toThrow("No profile named 'nope'");
  });

  it("lets flags and the environment win, and never sends a profile's token to another server", () => {
    expect(resolveConnection({ server: "https://other.example.com" })).toMatchObject({
      server: "https://other.example.com",
      token: undefined,
    });
    process.env.KILN_SERVER_URL = "https://evil.example.com";
    expect(resolveConnection({})).toMatchObject({ server: "https://evil.example.com", token: undefined, source: "env" });
    expect(resolveConnection({ token: "kiln_api_flag" })).toMatchObject({ token: "kiln_api_flag", source: "flags" });
    expect(resolveConnection({ server: "https://kiln.example.com/" })).toMatchObject({ token: "kiln_api_prod" });
  });
});

describe("new KilnClient() without settings", () => {
  it("uses the profile kiln login saved", () => {
    const client = new KilnClient();
    expect(client.serverUrl).toBe("https://kiln.example.com");
    expect(client.hasToken).toBe(true);
  });

  it("sends the saved token only to the saved server", () => {
    process.env.KILN_SERVER_URL = "https://elsewhere.example.com";
    expect(new KilnClient().hasToken).toBe(false);
    expect(new KilnClient({ serverUrl: "https://elsewhere.example.com" }).hasToken).toBe(false);
    expect(new KilnClient({ serverUrl: "https://kiln.example.com" }).hasToken).toBe(true);
  });
});
