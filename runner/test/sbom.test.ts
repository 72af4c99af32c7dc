// The SBOM collector (runner/src/sbom.ts, sbom-collect.ts): dpkg, apk, dist-info and npm
// metadata as their tools write them, read from a root filesystem made under a temp dir,
// without following links out of it; and the CycloneDX 1.6 document made from them.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cycloneDx, parseApkInstalled, parseDistInfoMetadata, parseDpkgStatus, purlOf } from "../src/sbom.ts";
import { collectPackages, readInside } from "../src/sbom-collect.ts";

const DPKG_STATUS = `Package: curl
Status: install ok installed
Priority: optional
Section: web
Installed-Size: 501
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 7.88.1-10+deb12u5
Depends: libc6 (>= 2.34), libcurl4 (= 7.88.1-10+deb12u5), zlib1g (>= 1:1.1.4)
Description: command line tool for transferring data with URL syntax
 curl is a command line tool for transferring data with URL syntax, supporting
 DICT, FILE, FTP, FTPS, GOPHER, HTTP, HTTPS, IMAP, IMAPS, LDAP, LDAPS.
Homepage: https://curl.se/

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
`;

const APK_INSTALLED = `C:Q1Zs8fGjd6jVaz0YmLQo5xMxSXB2A=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT

C:Q1abc=
P:busybox
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
`;

const METADATA = `Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
License: Apache 2.0
Requires-Dist: idna (<4,>=2.5)

# Requests
License: not a header, part of the description
`;

const root = mkdtempSync(path.join(os.tmpdir(), "kiln-sbom-"));
const outside = mkdtempSync(path.join(os.tmpdir(), "kiln-sbom-outside-"));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

function write(rel: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), text);
}

describe("SBOM parsers", () => {
  it("reads installed dpkg packages only, with versions and architecture", () => {
    expect(parseDpkgStatus(DPKG_STATUS).map((p) => [p.name, p.version, p.arch])).toEqual([
      ["curl", "7.88.1-10+deb12u5", "amd64"],
      ["libc6", "2.36-9+deb12u4", "amd64"],
    ]);
  });

  it("reads apk's installed database with licenses", () => {
    expect(parseApkInstalled(APK_INSTALLED).map((p) => [p.name, p.version, p.license])).toEqual([
      ["musl", "1.2.4-r2", "MIT"],
      ["busybox", "1.36.1-r5", "GPL-2.0-only"],
    ]);
  });

  it("reads a dist-info METADATA's headers, not its description", () => {
    expect(parseDistInfoMetadata(METADATA, "/x")).toMatchObject({ name: "requests", version: "2.31.0", license: "Apache 2.0" });
    expect(parseDistInfoMetadata("Metadata-Version: 2.1\n", "/x")).toBeNull();
  });

  it("writes package URLs per the purl spec", () => {
    const base = { license: null, location: "/" };
    expect(purlOf({ ...base, ecosystem: "deb", name: "curl", version: "7.88.1-10+deb12u5", arch: "amd64" })).toBe(
      "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64",
    );
    expect(purlOf({ ...base, ecosystem: "npm", name: "@types/node", version: "22.0.0" })).toBe("pkg:npm/%40types/node@22.0.0");
    expect(purlOf({ ...base, ecosystem: "pypi", name: "Typing_Extensions", version: "4.12.2" })).toBe("pkg:pypi/typing-extensions@4.12.2");
  });
});

describe("collectPackages", () => {
  it("finds dpkg, apk, Python and npm packages in a root filesystem and makes a CycloneDX 1.6 document", async () => {
    write("var/lib/dpkg/status", DPKG_STATUS);
    write("lib/apk/db/installed", APK_INSTALLED);
    write("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", METADATA);
    write("app/node_modules/left-pad/package.json", JSON.stringify({ name: "left-pad", version: "1.3.0", license: "WTFPL" }));
    write("app/node_modules/@scope/pkg/package.json", JSON.stringify({ name: "@scope/pkg", version: "2.0.0" }));
    write("app/node_modules/left-pad/node_modules/inner/package.json", JSON.stringify({ name: "inner", version: "0.1.0" }));
    write("proc/fake/node_modules/ignored/package.json", JSON.stringify({ name: "ignored", version: "1.0.0" }));
    const found = await collectPackages(root);
    expect(found.map((p) => `${p.ecosystem}:${p.name}@${p.version}`).sort()).toEqual(
      [
        "apk:busybox@1.36.1-r5",
        "apk:musl@1.2.4-r2",
        "deb:curl@7.88.1-10+deb12u5",
        "deb:libc6@2.36-9+deb12u4",
        "npm:@scope/pkg@2.0.0",
        "npm:inner@0.1.0",
        "npm:left-pad@1.3.0",
        "pypi:requests@2.31.0",
      ].sort(),
    );
    const doc = cycloneDx(found, {
      digest: `sha256:${"a".repeat(64)}`,
      reference: "r",
      runnerVersion: "0.2.0",
      timestamp: "2026-01-01T00:00:00.000Z",
    });
    expect(doc).toMatchObject({ bomFormat: "CycloneDX", specVersion: "1.6", metadata: { component: { type: "container" } } });
    const components = doc.components as { name: string; licenses?: unknown[] }[];
    expect(components).toHaveLength(8);
    expect(components.find((c) => c.name === "left-pad")?.licenses).toEqual([{ license: { name: "WTFPL" } }]);
  });

  it("follows no symbolic link out of the image", async () => {
    writeFileSync(path.join(outside, "status"), DPKG_STATUS);
    mkdirSync(path.join(outside, "evil.dist-info"), { recursive: true });
    writeFileSync(path.join(outside, "evil.dist-info", "METADATA"), "Name: host-secret\nVersion: 1\n");
    const image = mkdtempSync(path.join(os.tmpdir(), "kiln-sbom-links-"));
    try {
      mkdirSync(path.join(image, "var/lib/dpkg"), { recursive: true });
      symlinkSync(path.join(outside, "status"), path.join(image, "var/lib/dpkg/status"));
      symlinkSync(outside, path.join(image, "linked"));
      mkdirSync(path.join(image, "py/x.dist-info"), { recursive: true });
      symlinkSync(path.join(outside, "evil.dist-info", "METADATA"), path.join(image, "py/x.dist-info/METADATA"));
      expect(await readInside(image, "var/lib/dpkg/status")).toBeNull();
      expect(await readInside(image, "linked/status")).toBeNull();
      expect(await collectPackages(image)).toEqual([]);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });
});
