/**
 * The SBOM of a built image (decision 0024), pure: parsers for what package managers record
 * in a root filesystem (dpkg's status file, apk's installed database, Python `*.dist-info/METADATA`,
 * npm `node_modules/<pkg>/package.json`) and the CycloneDX 1.6 JSON document listing them. The
 * shell that reads the image's files is sbom-collect.ts.
 */

/** One package found in the image. */
export type FoundPackage = {
  ecosystem: "deb" | "apk" | "pypi" | "npm";
  name: string;
  version: string;
  /** SPDX expression or license names as recorded; null when the package records none. */
  license: string | null;
  /** Where it was found, relative to the root (`/var/lib/dpkg/status`, `/usr/lib/python3/dist-packages/x.dist-info`). */
  location: string;
  /** dpkg's architecture, when recorded. */
  arch?: string;
};

// dpkg and apk databases: blank-line separated stanzas of `Key: value` (dpkg continuation lines start with a space).
function stanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | null = null;
    for (const line of block.split("\n")) {
      if (/^[ \t]/.test(line) && last) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      else {
        const m = /^([A-Za-z0-9_-]+):\s?(.*)$/.exec(line);
        if (m) {
          last = m[1]!;
          fields.set(last, m[2]!);
        }
      }
    }
    if (fields.size > 0) out.push(fields);
  }
  return out;
}

/** Installed packages of a dpkg status file (only `install ok installed`). dpkg records no licenses here. */
export function parseDpkgStatus(text: string, location = "/var/lib/dpkg/status"): FoundPackage[] {
  return stanzas(text)
    .filter((s) => s.get("Package") && s.get("Version") && (s.get("Status") ?? "install ok installed").endsWith(" installed"))
    .map((s) => ({
      ecosystem: "deb" as const,
      name: s.get("Package")!,
      version: s.get("Version")!,
      license: null,
      location,
      ...(s.get("Architecture") ? { arch: s.get("Architecture")! } : {}),
    }));
}

/** Packages of apk's `installed` database (single-letter keys: P name, V version, L license, A arch). */
export function parseApkInstalled(text: string, location = "/lib/apk/db/installed"): FoundPackage[] {
  return stanzas(text)
    .filter((s) => s.get("P") && s.get("V"))
    .map((s) => ({
      ecosystem: "apk" as const,
      name: s.get("P")!,
      version: s.get("V")!,
      license: s.get("L") ?? null,
      location,
      ...(s.get("A") ? { arch: s.get("A")! } : {}),
    }));
}

/** A Python distribution from its `METADATA` (RFC 822 headers until the first blank line). */
export function parseDistInfoMetadata(text: string, location: string): FoundPackage | null {
  const head = stanzas(text.split(/\r?\n\r?\n/)[0] ?? "")[0];
  const name = head?.get("Name");
  const version = head?.get("Version");
  if (!head || !name || !version) return null;
  const expression = head.get("License-Expression");
  const license = expression ?? (head.get("License")?.split("\n")[0] || null);
  return { ecosystem: "pypi", name, version, license, location };
}

/** An npm package from its `package.json` text; null for one without name and version. */
export function parsePackageJson(text: string, location: string): FoundPackage | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const { name, version, license } = json as Record<string, unknown>;
  if (typeof name !== "string" || typeof version !== "string") return null;
  return { ecosystem: "npm", name, version, license: typeof license === "string" ? license : null, location };
}

/** The package URL (purl spec) of a package. */
export function purlOf(p: FoundPackage): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%40/g, "@");
  switch (p.ecosystem) {
    case "deb":
      return `pkg:deb/debian/${enc(p.name)}@${enc(p.version)}${p.arch ? `?arch=${enc(p.arch)}` : ""}`;
    case "apk":
      return `pkg:apk/alpine/${enc(p.name)}@${enc(p.version)}${p.arch ? `?arch=${enc(p.arch)}` : ""}`;
    case "pypi":
      return `pkg:pypi/${enc(p.name.toLowerCase().replace(/[-_.]+/g, "-"))}@${enc(p.version)}`;
    case "npm": {
      const [scope, bare] = p.name.startsWith("@") ? p.name.split("/") : [null, p.name];
      return `pkg:npm/${scope ? `${encodeURIComponent(scope)}/` : ""}${enc(bare ?? p.name)}@${enc(p.version)}`;
    }
  }
}

/** What the document says about the image and its maker. */
export type SbomSubject = { digest: string; reference: string; runnerVersion: string; timestamp: string };

/** The CycloneDX 1.6 JSON document of `packages` (sorted, duplicates by purl dropped). */
export function cycloneDx(packages: readonly FoundPackage[], subject: SbomSubject): Record<string, unknown> {
  const seen = new Set<string>();
  const components = [...packages]
    .sort((a, b) => a.ecosystem.localeCompare(b.ecosystem) || a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
    .flatMap((p) => {
      const purl = purlOf(p);
      if (seen.has(purl)) return [];
      seen.add(purl);
      return [
        {
          type: "library",
          "bom-ref": purl,
          name: p.name,
          version: p.version,
          purl,
          ...(p.license ? { licenses: [{ license: { name: p.license } }] } : {}),
          properties: [
            { name: "kiln:package:ecosystem", value: p.ecosystem },
            { name: "kiln:package:location", value: p.location },
          ],
        },
      ];
    });
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    version: 1,
    metadata: {
      timestamp: subject.timestamp,
      tools: { components: [{ type: "application", name: "kiln-runner", version: subject.runnerVersion }] },
      component: { type: "container", "bom-ref": subject.digest, name: subject.reference, version: subject.digest },
    },
    components,
  };
}
