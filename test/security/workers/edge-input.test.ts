// Security review "Tenant isolation and trust", B 1-3, 6, 7: input the edge refuses with a 4xx
// in the one error shape, a message that says how to fix it, and no change to state: root
// layers without a FROM or with a base that is no OCI reference, unknown GPU types, bodies
// that are not UTF-8, and token names with NULs or lone surrogates.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chain, layer, newTenant, ORIGIN, submitImage } from "../../workers/helpers.ts";
import { ADMIN, call, callJson, newTenant as newApiTenant } from "../../workers/periphery-helpers.ts";

type Refusal = { status: number; body: { error: { code: string; message: string; details?: { path: unknown[]; message: string }[] } } };

/** The images the tenant has: none after a refused submission. */
async function imageCount(token: string): Promise<number> {
  const listed = await callJson<{ images: unknown[] }>("GET", "/v1/images", 200, { token });
  return listed.images.length;
}

function expectRefused(result: Refusal, fragment: RegExp): void {
  expect(result.status, JSON.stringify(result.body)).toBe(400);
  expect(Object.keys(result.body)).toEqual(["error"]);
  expect(result.body.error.code).toBe("invalid_request");
  const said = (result.body.error.details ?? []).map((d) => d.message).join("\n");
  expect(said).toMatch(fragment);
}

describe("POST /v1/images: the root layer's FROM", () => {
  it("refuses a root layer whose first instruction is not FROM, or that builds FROM base", async () => {
    const t = await newTenant();
    const roots = [["RUN echo no base"], ["", "# a comment", "RUN true"], ["FROM base", "RUN true"], ["ARG X=1", "ENV A=b"], [""]];
    for (const lines of roots) {
      const [root, ...rest] = chain(2);
      const result = await submitImage(t.token, [{ ...root!, dockerfileCommands: lines }, ...rest]);
      expectRefused(result as Refusal, /FROM/);
      expect(result.body.error.details[0].message).toMatch(/e\.g\. "FROM /);
    }
    expect(await imageCount(t.token)).toBe(0);
  });

  it("refuses base references that are not OCI references: traversal, empty and dot segments", async () => {
    const t = await newTenant();
    const bases = [
      "kiln.test/../dev/base",
      "127.0.0.1:8787/../../etc/passwd",
      "kiln.test/./base",
      "kiln.test//base",
      "kiln.test/ws/",
      "../base",
      "./base",
      "base/..",
      "Busybox:1.36",
      "busybox:1.36@sha256:abc",
      "kiln.test/ws/app:../../x",
    ];
    for (const base of bases) {
      const result = await submitImage(t.token, [layer(["RUN true"], { dockerfileCommands: [`FROM ${base}`, "RUN true"] }, true)]);
      expectRefused(result as Refusal, /not a valid image reference/);
    }
    // Behind an ARG, with its default or with a build arg: the expanded reference is what counts.
    const viaDefault = layer([], { dockerfileCommands: ["ARG B=kiln.test/../dev/base", "FROM ${B}", "RUN true"] }, true);
    expectRefused((await submitImage(t.token, [viaDefault])) as Refusal, /not a valid image reference/);
    const viaBuildArg = layer([], { dockerfileCommands: ["ARG B=busybox:1.36", "FROM $B", "RUN true"], buildArgs: { B: "x/../y" } }, true);
    expectRefused((await submitImage(t.token, [viaBuildArg])) as Refusal, /not a valid image reference/);
    // A later FROM of a derived layer is a base too.
    const [root, child] = chain(2);
    const sneaky = { ...child!, dockerfileCommands: ["FROM base", "RUN true", "FROM kiln.test/../x", "RUN true"] };
    expectRefused((await submitImage(t.token, [root!, sneaky])) as Refusal, /not a valid image reference/);
    expect(await imageCount(t.token)).toBe(0);
  });

  it("accepts real Dockerfiles: directives, comments and ARGs before FROM, stages, scratch, digests", async () => {
    const t = await newTenant();
    const digest = `sha256:${"a".repeat(64)}`;
    const good = [
      [
        "# syntax=docker/dockerfile:1",
        "# the base",
        "ARG BASE=busybox:1.36",
        "FROM ${BASE} AS build",
        "RUN true",
        "FROM build",
        "RUN true",
      ],
      ["FROM scratch", "COPY --from=busybox:1.36 /bin/true /true"],
      [`FROM kiln.test:8787/ws-a/base_image.v2:1.0-rc@${digest}`],
      ["FROM --platform=$BUILDPLATFORM docker.io/library/busybox:${TARGETARCH:-1.36}"],
    ];
    for (const lines of good) {
      const result = await submitImage(t.token, [layer([], { dockerfileCommands: lines }, true)]);
      expect([200, 202, 503], JSON.stringify(result.body)).toContain(result.status);
    }
  });
});

describe("POST /v1/images: GPU types", () => {
  it("refuses an unknown GPU type at submission, listing the known ones", async () => {
    const t = await newTenant();
    for (const type of ["ZZ999", "t4", "", "A100-81GB"]) {
      const result = await submitImage(t.token, [layer(["RUN nvidia-smi"], { gpu: { type, count: 1 } }, true)]);
      expectRefused(result as Refusal, /unknown GPU type; use one of ANY, T4/);
    }
    expect(await imageCount(t.token)).toBe(0);
  });
});

describe("JSON bodies that are not UTF-8", () => {
  const invalid = [
    new Uint8Array([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    // A lone surrogate encoded as bytes (CESU-8), and an overlong "/".
    new Uint8Array([...new TextEncoder().encode('{"name":"'), 0xed, 0xa0, 0x80, ...new TextEncoder().encode('"}')]),
    new Uint8Array([...new TextEncoder().encode('{"name":"'), 0xc0, 0xaf, ...new TextEncoder().encode('"}')]),
  ];

  it("are refused with 400 invalid_utf8 instead of being decoded with U+FFFD", async () => {
    const { token } = await newApiTenant();
    const before = await callJson<{ tokens: unknown[] }>("GET", "/v1/tokens", 200, { token });
    for (const body of invalid) {
      for (const [method, path] of [
        ["POST", "/v1/tokens"],
        ["POST", "/v1/images"],
        ["POST", "/v1/workspaces"],
        ["PUT", "/v1/tags/main"],
        ["POST", "/v1/runner/events"],
      ] as const) {
        const response = await call(method, path, {
          token: path === "/v1/workspaces" ? ADMIN : token,
          body,
          headers: { "content-type": "application/json" },
        });
        expect(response.status, `${method} ${path}`).toBe(400);
        const answer = await response.json<any>();
        expect(answer.error.code).toBe("invalid_utf8");
        expect(answer.error.message).toMatch(/UTF-8/);
      }
    }
    expect(await callJson<{ tokens: unknown[] }>("GET", "/v1/tokens", 200, { token })).toEqual(before);
  });

  it("still accepts valid UTF-8, non-ASCII included", async () => {
    const { token } = await newApiTenant();
    const body = new TextEncoder().encode(JSON.stringify({ name: "déploiement 🚀", scopes: ["images:read"] }));
    const response = await call("POST", "/v1/tokens", { token, body, headers: { "content-type": "application/json" } });
    expect(response.status).toBe(201);
    expect((await response.json<any>()).name).toBe("déploiement 🚀");
  });
});

describe("token names", () => {
  it("refuse NULs, control characters, bidi overrides, lone surrogates and blank names", async () => {
    const { token } = await newApiTenant();
    const before = await callJson<{ tokens: unknown[] }>("GET", "/v1/tokens", 200, { token });
    // Written as JSON escapes: "\ud800" is valid JSON text that decodes to a lone surrogate.
    const names = [
      '"ci\\u0000bot"',
      '"ci\\ud800"',
      '"\\udc00ci"',
      '"line\\nbreak"',
      '"tab\\there"',
      '"\\u202egnp.exe"',
      '"   "',
      '"\\u0085"',
    ];
    for (const name of names) {
      const response = await SELF.fetch(`${ORIGIN}/v1/tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: `{"name":${name},"scopes":["images:read"]}`,
      });
      const answer = await response.json<any>();
      expect(response.status, name).toBe(400);
      expect(answer.error.details[0].path).toEqual(["name"]);
      expect(answer.error.details[0].message).toMatch(/control characters|well-formed Unicode|blank/);
    }
    expect(await callJson<{ tokens: unknown[] }>("GET", "/v1/tokens", 200, { token })).toEqual(before);
  });
});
