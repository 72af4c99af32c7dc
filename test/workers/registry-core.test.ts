// Pure cores of the built-in registry: names and routes, scopes, manifests, pagination,
// ranges and bearer tokens.
import { describe, expect, it } from "vitest";
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parseManifest } from "../../workers/registry/manifest.ts";
import { pageOf, parsePage } from "../../workers/registry/pagination.ts";
import { parseContentRange, parseRangeHeader, uploadRangeHeader } from "../../workers/registry/ranges.ts";
import { classifyDigest, isRepositoryName, isTag, parseRegistryPath, parseScopes } from "../../workers/registry/reference.ts";
import { bearerKey, challenge, parseBasic, signBearer, verifyBearer } from "../../workers/registry/token.ts";

const D = `sha256:${"a".repeat(64)}`;
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe("registry references", () => {
  it("accepts the spec's names only with a workspace namespace", () => {
    expect(isRepositoryName("acme/app")).toBe(true);
    expect(isRepositoryName("acme/team/app.v2_x--y")).toBe(true);
    expect(isRepositoryName("app")).toBe(false);
    expect(isRepositoryName("Acme/app")).toBe(false);
    expect(isRepositoryName("acme//app")).toBe(false);
    expect(isRepositoryName(`acme/${"a".repeat(300)}`)).toBe(false);
    expect(isTag("v1.0_rc-1")).toBe(true);
    expect(isTag(".hidden")).toBe(false);
    expect(classifyDigest(D)).toBe("sha256");
    expect(classifyDigest(`sha512:${"a".repeat(128)}`)).toBe("other");
    expect(classifyDigest("nope")).toBe("invalid");
  });

  it("splits /v2 paths whose names contain slashes", () => {
    expect(parseRegistryPath("/v2/")).toEqual({ kind: "base" });
    expect(parseRegistryPath("/v2/token")).toEqual({ kind: "token" });
    expect(parseRegistryPath("/v2/a/b/c/blobs/uploads/")).toEqual({ kind: "uploads", name: "a/b/c" });
    expect(parseRegistryPath("/v2/a/b/blobs/uploads/abc-1")).toEqual({ kind: "upload", name: "a/b", uploadId: "abc-1" });
    expect(parseRegistryPath(`/v2/a/b/blobs/${D}`)).toEqual({ kind: "blob", name: "a/b", digest: D });
    expect(parseRegistryPath("/v2/a/manifests/latest")).toEqual({ kind: "manifest", name: "a", reference: "latest" });
    expect(parseRegistryPath("/v2/a/b/tags/list")).toEqual({ kind: "tags", name: "a/b" });
    expect(parseRegistryPath(`/v2/a/b/referrers/${D}`)).toEqual({ kind: "referrers", name: "a/b", digest: D });
    expect(parseRegistryPath("/v2/a/b/other")).toEqual({ kind: "unknown" });
  });

  it("parses token scopes, merging repeats and dropping what it does not know", () => {
    expect(parseScopes(["repository:acme/app:pull,push", "repository:acme/app:delete registry:catalog:*", "repository:BAD:pull"])).toEqual([
      { name: "acme/app", actions: ["delete", "pull", "push"] },
    ]);
  });
});

describe("manifest parsing", () => {
  const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: D, size: 2 };
  const layer = (n: string) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${n.repeat(64)}`, size: 3 });

  it("reads image manifests: blobs to check, foreign layers skipped, subject and artifact type", () => {
    const foreign = { ...layer("c"), urls: ["https://example.invalid/x"] };
    const parsed = parseManifest(
      json({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config,
        layers: [layer("b"), foreign],
        subject: { ...config, digest: `sha256:${"d".repeat(64)}` },
      }),
      OCI_MANIFEST,
    );
    expect(parsed).toEqual({
      ok: true,
      manifest: {
        mediaType: OCI_MANIFEST,
        kind: "manifest",
        blobs: [D, `sha256:${"b".repeat(64)}`],
        manifests: [],
        sizes: { [D]: 2, [`sha256:${"b".repeat(64)}`]: 3 },
        subject: `sha256:${"d".repeat(64)}`,
        artifactType: config.mediaType,
        annotations: null,
      },
    });
  });

  it("reads indexes and Docker manifests, and refuses mismatches and schema 1", () => {
    const index = parseManifest(
      json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...config, mediaType: OCI_MANIFEST }] }),
      undefined,
    );
    expect(index.ok && index.manifest.manifests).toEqual([D]);
    expect(parseManifest(json({ schemaVersion: 2, config, layers: [] }), DOCKER_MANIFEST).ok).toBe(true);
    expect(parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), OCI_MANIFEST).ok).toBe(false);
    expect(parseManifest(json({ schemaVersion: 1, fsLayers: [] }), "application/vnd.docker.distribution.manifest.v1+json").ok).toBe(false);
    expect(parseManifest(new TextEncoder().encode("{"), OCI_MANIFEST).ok).toBe(false);
    expect(
      parseManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, digest: "md5:x" }, layers: [] }), OCI_MANIFEST)
        .ok,
    ).toBe(false);
  });
});

describe("pagination and ranges", () => {
  it("pages tags with n and last and links the next page", () => {
    const request = parsePage("2", "a")!;
    expect(pageOf(["b", "c", "d"], request, "/v2/x/y/tags/list")).toEqual({
      names: ["b", "c"],
      link: '</v2/x/y/tags/list?n=2&last=c>; rel="next"',
    });
    expect(pageOf(["b"], request, "/p")).toEqual({ names: ["b"], link: null });
    expect(parsePage("x", undefined)).toBeNull();
    expect(parsePage(undefined, undefined)).toEqual({ limit: 1000, last: null });
  });

  it("parses Range and Content-Range", () => {
    expect(parseRangeHeader("bytes=0-9", 100)).toEqual({ offset: 0, length: 10 });
    expect(parseRangeHeader("bytes=90-", 100)).toEqual({ offset: 90, length: 10 });
    expect(parseRangeHeader("bytes=-5", 100)).toEqual({ offset: 95, length: 5 });
    expect(parseRangeHeader("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRangeHeader("bytes=0-1,5-6", 100)).toBeNull();
    expect(parseContentRange("0-99")).toEqual({ start: 0, end: 99 });
    expect(parseContentRange("bytes 10-19/*")).toEqual({ start: 10, end: 19 });
    expect(parseContentRange("9-1")).toBe("invalid");
    expect(uploadRangeHeader(0)).toBe("0-0");
    expect(uploadRangeHeader(10)).toBe("0-9");
  });
});

describe("bearer tokens", () => {
  const secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

  it("round-trips claims and rejects tampering, other keys and expiry", async () => {
    const key = await bearerKey(secret);
    const claims = { v: 1 as const, sub: "t1", ws: "w1", acc: { "acme/app": ["pull" as const] }, iat: 100, exp: 200 };
    const token = await signBearer(key, claims);
    expect(await verifyBearer(key, token, 150)).toEqual(claims);
    expect(await verifyBearer(key, token, 200)).toBeNull();
    const [body, mac] = token.split(".");
    const forged = btoa(JSON.stringify({ ...claims, acc: { "rival/app": ["push"] } }))
      .replace(/=+$/, "")
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
    expect(await verifyBearer(key, `${forged}.${mac}`, 150)).toBeNull();
    expect(await verifyBearer(await bearerKey(btoa("x".repeat(32))), token, 150)).toBeNull();
    expect(await verifyBearer(key, `${body}`, 150)).toBeNull();
  });

  it("parses Basic credentials and builds challenges", () => {
    expect(parseBasic(`Basic ${btoa("kiln-job:s3cr:et")}`)).toEqual({ username: "kiln-job", password: "s3cr:et" });
    expect(parseBasic("Bearer x")).toBeNull();
    expect(challenge("http://h", { name: "a/b", actions: ["pull", "push"] }, "insufficient_scope")).toBe(
      'Bearer realm="http://h/v2/token",service="kiln",scope="repository:a/b:pull,push",error="insufficient_scope"',
    );
  });
});
