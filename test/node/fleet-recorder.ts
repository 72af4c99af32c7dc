/**
 * A real HTTP endpoint that plays a runner fleet and records every dispatch it receives, for
 * the workers tests (started by `fleet-recorder-setup.ts`) and `bench/orchestrator.ts`.
 *
 *   POST /fleet/<name>/<accept|refuse|reject>   records the request; answers 202, 503 or 400
 *   POST /fleet/<name>/redirect                 records it; answers 307 to .../accept (senders must not follow)
 *   POST /fleet/<name>/hang                     records it; never answers (until the recorder closes)
 *   GET  /records?fleet=<name>&min=<n>&timeoutMs=<ms>   the fleet's records, once there are at least n
 *   DELETE /records?fleet=<name>                 forgets them
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One recorded request. */
export type Recorded = { fleet: string; mode: string; headers: Record<string, string>; body: string; receivedAtMs: number };

/** A running recorder: its base URL, direct access to the records, and `close()`. */
export type FleetRecorder = {
  url: string;
  records: (fleet: string) => Recorded[];
  /** Resolves with the fleet's records once there are at least `min` (or at the timeout, with what there is). */
  waitFor: (fleet: string, min: number, timeoutMs: number) => Promise<Recorded[]>;
  close: () => Promise<void>;
};

const STATUS: Record<string, number> = { accept: 202, refuse: 503, reject: 400, redirect: 307 };

/** Starts a recorder on 127.0.0.1 (a free port unless given). */
export async function startFleetRecorder(port = 0): Promise<FleetRecorder> {
  const byFleet = new Map<string, Recorded[]>();
  const waiters = new Set<() => void>();
  const list = (fleet: string) => byFleet.get(fleet) ?? [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://recorder");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const match = /^\/fleet\/([\w.-]+)\/(accept|refuse|reject|redirect|hang)$/.exec(url.pathname);
      if (req.method === "POST" && match) {
        const [, fleet, mode] = match as unknown as [string, string, string];
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        byFleet.set(fleet, [
          ...list(fleet),
          { fleet, mode, headers, body: Buffer.concat(chunks).toString("utf8"), receivedAtMs: Date.now() },
        ]);
        for (const wake of [...waiters]) wake();
        if (mode === "hang") return;
        const location = mode === "redirect" ? { location: `/fleet/${fleet}/accept` } : {};
        res.writeHead(STATUS[mode]!, { "content-type": "application/json", ...location }).end(JSON.stringify({ ok: mode === "accept" }));
        return;
      }
      const fleet = url.searchParams.get("fleet") ?? "";
      if (req.method === "DELETE" && url.pathname === "/records") {
        byFleet.delete(fleet);
        res.writeHead(204).end();
        return;
      }
      if (req.method === "GET" && url.pathname === "/records") {
        const min = Number(url.searchParams.get("min") ?? "0");
        const deadline = Date.now() + Number(url.searchParams.get("timeoutMs") ?? "10000");
        const answer = () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(list(fleet)));
        if (list(fleet).length >= min) return answer();
        // Event-driven wait: answers as soon as the n-th dispatch arrives (or at the timeout).
        const wake = () => {
          if (list(fleet).length < min && Date.now() < deadline) return;
          clearTimeout(timer);
          waiters.delete(wake);
          answer();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
        waiters.add(wake);
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  const waitFor = (fleet: string, min: number, timeoutMs: number) =>
    new Promise<Recorded[]>((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const wake = () => {
        if (list(fleet).length < min && Date.now() < deadline) return;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(list(fleet));
      };
      const timer = setTimeout(wake, timeoutMs);
      waiters.add(wake);
      wake();
    });
  return {
    url: `http://127.0.0.1:${bound}`,
    records: list,
    waitFor,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
