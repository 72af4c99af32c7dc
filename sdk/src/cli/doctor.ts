/**
 * `kiln doctor`: checks a Kiln deployment from the outside, the way a build will use it, and
 * says for each problem what happened, the details and how to fix it.
 *
 * 1. reachable: `GET /healthz`;
 * 2. token: accepted, and whether it is an admin token (`GET /v1/admin/status`);
 * 3. with an admin token: D1 migrations current, Worker secrets and bindings in place, every
 *    enabled fleet reachable and accepting the orchestrator's signature (the Worker probes them);
 * 4. registry writable: a tiny blob pushed, read back and deleted through `/v2`.
 *
 * Exit codes: 0 healthy; 1 a check failed; 4 the token was refused; 6 the server is unreachable.
 */
import { sha256Hex } from "@kiln-build/protocol";
import { KilnClient } from "../client.ts";
import { AuthenticationError } from "../errors.ts";
import { EXIT } from "./output.ts";

/** One check's outcome; `ok: null` means skipped (not a failure). */
export type DoctorCheck = { name: string; ok: boolean | null; summary: string; details?: string; fix?: string };

/** Options of `kiln doctor`. */
export type DoctorParams = { serverUrl?: string; token?: string; workspace?: string; fetch?: typeof fetch };

type ProbeView = { ok: boolean; code: string; status: number | null; message: string; durationMs: number };
type AdminStatus = {
  ok: boolean;
  migrations: { expected: number; applied: number; pending: string[]; unknown: string[]; current: boolean; error?: string };
  secrets: { KILN_ADMIN_TOKEN: boolean; KILN_SECRET_KEY: "ok" | "missing" | "invalid" };
  bindings: { missing: string[]; rateLimitsMissing: string[] };
  fleets?: { id: string; name: string; url: string; reachable: ProbeView; signing: ProbeView }[];
};

const SECRET_FIX = "openssl rand -base64 32 | npx wrangler secret put KILN_SECRET_KEY --env <staging|production>";

/** Runs every check; never throws for a failed check (only for bugs). */
export async function runDoctor(params: DoctorParams): Promise<{ serverUrl: string; checks: DoctorCheck[]; exitCode: number }> {
  const client = new KilnClient({
    ...(params.serverUrl ? { serverUrl: params.serverUrl } : {}),
    ...(params.token ? { token: params.token } : {}),
    maxRetries: 1,
    timeoutMs: 20_000,
    ...(params.fetch ? { fetch: params.fetch } : {}),
  });
  const doFetch = params.fetch ?? globalThis.fetch;
  const checks: DoctorCheck[] = [];
  const serverUrl = client.serverUrl;

  const started = Date.now();
  const health = await doFetch(`${serverUrl}/healthz`, { signal: AbortSignal.timeout(10_000) }).then(
    async (r) => ({ status: r.status, text: await r.text() }),
    (error: unknown) => ({ status: 0, text: String((error as Error)?.message ?? error) }),
  );
  if (health.status !== 200) {
    checks.push({
      name: "reachable",
      ok: false,
      summary: `GET ${serverUrl}/healthz ${health.status ? `answered HTTP ${health.status}` : "failed"}`,
      details: health.text.slice(0, 300),
      fix: "Check the URL (--server or KILN_SERVER_URL). For a deployment, `npx wrangler deployments list --env <env>` shows whether the Worker is deployed; locally, start it with `npm start`.",
    });
    return { serverUrl, checks, exitCode: EXIT.unreachable };
  }
  checks.push({ name: "reachable", ok: true, summary: `GET /healthz answered in ${Date.now() - started} ms` });

  const token = params.token ?? process.env.KILN_TOKEN;
  if (!token) {
    checks.push({
      name: "token",
      ok: false,
      summary: "no token: nothing beyond reachability can be checked",
      fix: "Run `kiln login --server URL` (or pass --token / set KILN_TOKEN); an admin token checks everything.",
    });
    return { serverUrl, checks, exitCode: EXIT.auth };
  }
  let status: AdminStatus | null = null;
  try {
    const response = await client.request("GET", ["v1", "admin", "status"], { query: { fleets: "true" }, accept: [403] });
    if (response.status === 403) {
      await response.body?.cancel();
      checks.push({
        name: "token",
        ok: true,
        summary: "accepted (not an admin token: server-side checks skipped)",
        fix: "Run with an admin token to also check migrations, secrets and fleets.",
      });
    } else {
      status = (await response.json()) as AdminStatus;
      checks.push({ name: "token", ok: true, summary: "accepted (admin)" });
    }
  } catch (error) {
    if (error instanceof AuthenticationError) {
      checks.push({
        name: "token",
        ok: false,
        summary: "refused (401)",
        details: error.message,
        fix: "Use a token of this deployment: the bootstrap token is the KILN_ADMIN_TOKEN Worker secret; others come from `kiln token create`.",
      });
      return { serverUrl, checks, exitCode: EXIT.auth };
    }
    checks.push({ name: "token", ok: false, summary: "GET /v1/admin/status failed", details: String((error as Error)?.message ?? error) });
  }
  if (status) checks.push(...serverChecks(status));
  checks.push(await registryCheck(client, doFetch, token, params.workspace, status !== null));
  return { serverUrl, checks, exitCode: checks.some((c) => c.ok === false) ? EXIT.failure : EXIT.ok };
}

/** The checks read from `GET /v1/admin/status` (pure). */
export function serverChecks(status: AdminStatus): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const m = status.migrations;
  checks.push(
    m.current
      ? { name: "migrations", ok: true, summary: `${m.applied} of ${m.expected} applied` }
      : {
          name: "migrations",
          ok: false,
          summary:
            m.unknown.length > 0
              ? `the database has migrations this Worker does not know: ${m.unknown.join(", ")}`
              : `${m.pending.length} pending: ${m.pending.join(", ")}`,
          ...(m.error ? { details: m.error } : {}),
          fix:
            m.unknown.length > 0
              ? "Deploy the Worker version that matches the database (`npm run deploy -- --env <env>`)."
              : "npx wrangler d1 migrations apply DB --remote --env <staging|production> (npm run deploy does this).",
        },
  );
  const secretProblems = [
    ...(status.secrets.KILN_ADMIN_TOKEN ? [] : ["KILN_ADMIN_TOKEN is not set"]),
    ...(status.secrets.KILN_SECRET_KEY === "ok" ? [] : [`KILN_SECRET_KEY is ${status.secrets.KILN_SECRET_KEY}`]),
  ];
  checks.push(
    secretProblems.length === 0
      ? { name: "secrets", ok: true, summary: "KILN_ADMIN_TOKEN and KILN_SECRET_KEY set" }
      : { name: "secrets", ok: false, summary: secretProblems.join("; "), fix: `${SECRET_FIX} (docs/deploy.md)` },
  );
  checks.push(
    status.bindings.missing.length === 0
      ? {
          name: "bindings",
          ok: true,
          summary:
            status.bindings.rateLimitsMissing.length === 0
              ? "all bound"
              : `all required bound; rate limits off: ${status.bindings.rateLimitsMissing.join(", ")}`,
        }
      : {
          name: "bindings",
          ok: false,
          summary: `missing: ${status.bindings.missing.join(", ")}`,
          fix: "Deploy with the repository's wrangler.toml and --env (`npm run deploy -- --env <env>`); every environment must repeat every binding.",
        },
  );
  const fleets = status.fleets ?? [];
  if (fleets.length === 0) {
    checks.push({
      name: "fleets",
      ok: null,
      summary: "none registered: builds wait with `no_fleet`",
      fix: "Start a runner (docs/runner.md) and register it: kiln fleet add <name> https://<runner>/v1/jobs",
    });
  }
  for (const fleet of fleets) {
    const bad = !fleet.reachable.ok ? fleet.reachable : !fleet.signing.ok ? fleet.signing : null;
    checks.push(
      bad === null
        ? { name: `fleet ${fleet.name}`, ok: true, summary: `reachable (${fleet.reachable.durationMs} ms) and accepts our signature` }
        : {
            name: `fleet ${fleet.name}`,
            ok: false,
            summary: bad === fleet.reachable ? `not reachable from the Worker (${bad.code})` : `${bad.code.replaceAll("_", " ")}`,
            details: `${fleet.url} (${fleet.id}): ${bad.message}`,
            fix:
              bad === fleet.reachable
                ? "The Worker must reach the runner's URL: run `npx kiln-runner serve` there, open the port or put it behind a reverse proxy with a public name, and check the fleet URL (kiln fleet ls)."
                : bad.message,
          },
    );
  }
  return checks;
}

// Push, read back and delete a small unique blob through the OCI API, as a runner would.
async function registryCheck(
  client: KilnClient,
  doFetch: typeof fetch,
  token: string,
  workspace: string | undefined,
  admin: boolean,
): Promise<DoctorCheck> {
  let ws = workspace;
  if (!ws && admin) {
    const listed = await client.json<{ workspaces: { name: string }[] }>("GET", ["v1", "workspaces"]).catch(() => null);
    ws = listed?.workspaces[0]?.name;
  }
  if (!ws)
    return {
      name: "registry",
      ok: null,
      summary: "skipped: no workspace to push to",
      fix: "Pass --workspace <name> (the token's workspace).",
    };
  const repository = `${ws}/kiln-doctor`;
  const bytes = new TextEncoder().encode(`kiln doctor ${new Date().toISOString()} ${crypto.randomUUID()}\n`);
  const digest = `sha256:${await sha256Hex(bytes)}`;
  const auth = { authorization: `Basic ${btoa(`kiln-doctor:${token}`)}`, "x-request-id": crypto.randomUUID() };
  const base = `${client.serverUrl}/v2/${repository}/blobs`;
  const steps: [string, () => Promise<Response>, number][] = [
    [
      "push",
      () =>
        doFetch(`${base}/uploads/?digest=${digest}`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/octet-stream" },
          body: bytes,
        }),
      201,
    ],
    ["read back", () => doFetch(`${base}/${digest}`, { method: "HEAD", headers: auth }), 200],
    ["delete", () => doFetch(`${base}/${digest}`, { method: "DELETE", headers: auth }), 202],
  ];
  for (const [step, send, expected] of steps) {
    const response = await send().catch((error: unknown) => new Response(String((error as Error)?.message ?? error), { status: 599 }));
    const text = await response.text().catch(() => "");
    if (response.status !== expected) {
      return {
        name: "registry",
        ok: false,
        summary: `${step} of a test blob to ${repository} answered HTTP ${response.status} (expected ${expected})`,
        details: `${text.slice(0, 300)}${response.headers.get("x-request-id") ? ` (request id ${response.headers.get("x-request-id")})` : ""}`,
        fix:
          response.status === 401 || response.status === 403
            ? `Use a token with images:write on workspace '${ws}' (or an admin token).`
            : "Check the REGISTRY R2 bucket binding and the Worker's logs for this request id (`npx wrangler tail --env <env>`).",
      };
    }
  }
  return { name: "registry", ok: true, summary: `pushed, read back and deleted a blob in ${repository}` };
}

/** The human report (pure): one line per check, and "what happened / details / how to fix" for failures. */
export function renderDoctorReport(serverUrl: string, checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length), 10);
  const lines = [`kiln doctor: ${serverUrl}`, ""];
  for (const check of checks) {
    const mark = check.ok === true ? "✓" : check.ok === false ? "✗" : "-";
    lines.push(`  ${mark} ${check.name.padEnd(width)}  ${check.summary}`);
    if (check.ok === false) {
      lines.push(`      What happened: ${check.name}: ${check.summary}`);
      if (check.details) lines.push(`      Details: ${check.details}`);
      if (check.fix) lines.push(`      How to fix: ${check.fix}`);
    } else if (check.ok === null && check.fix) {
      lines.push(`      ${check.fix}`);
    }
  }
  const failed = checks.filter((c) => c.ok === false).length;
  lines.push("", failed === 0 ? "No problems found." : `${failed} problem${failed === 1 ? "" : "s"} found.`);
  return lines.join("\n");
}

/** The `kiln doctor` command: prints the report (or JSON) and resolves to the exit code (see the module comment). */
export async function doctorCommand(params: DoctorParams, json: boolean): Promise<number> {
  const { serverUrl, checks, exitCode } = await runDoctor(params);
  process.stdout.write(
    json ? `${JSON.stringify({ serverUrl, ok: exitCode === EXIT.ok, checks }, null, 2)}\n` : `${renderDoctorReport(serverUrl, checks)}\n`,
  );
  return exitCode;
}
