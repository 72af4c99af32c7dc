/**
 * The four traffic classes of `npm run bench:load`, each an autocannon instance: API clients
 * (cached resolves and log polls), badge readers, the runner's log events, and an abusive
 * client. `startTraffic` starts them all; their outcomes accumulate in a `Traffic`.
 */
import autocannon from "autocannon";
import { signedEvent } from "./load-api.ts";
import { API_CLIENTS, CONNECTIONS, RATES } from "./load-config.ts";
import { note, type Outcome, outcome } from "./load-outcomes.ts";
import type { LoadSetup } from "./load-setup.ts";

/** What the run observed, updated as responses arrive. */
export type Traffic = {
  out: { resolve: Outcome; logPoll: Outcome; badge: Outcome; event: Outcome; abusive: Outcome };
  badgeHits: number;
  /** Runner events not yet accepted, resent later with the same webhook-id. */
  retry: { seq: number; id: string }[];
  /** Sequence numbers of runner events the Worker accepted. */
  accepted: Set<number>;
  /** Runner events refused, by status. */
  refused: Record<string, number>;
};

type Ctx = { client?: number; startedAt?: number; seq?: number; id?: string };
type Target = { url: string; setup: LoadSetup; seconds: number; traffic: Traffic };

/** Starts every class for `seconds`; the promise settles when all have finished. */
export function startTraffic(url: string, setup: LoadSetup, seconds: number) {
  const traffic: Traffic = {
    out: { resolve: outcome(), logPoll: outcome(), badge: outcome(), event: outcome(), abusive: outcome() },
    badgeHits: 0,
    retry: [],
    accepted: new Set<number>(),
    refused: {},
  };
  const target = { url, setup, seconds, traffic };
  const runs = [apiClients(target), badgeReaders(target), runner(target), abusiveClient(target)];
  return { traffic, runs: Promise.all(runs) };
}

function resolveBody(setup: LoadSetup): string {
  return JSON.stringify({ builderVersion: "2025.06", layers: setup.chain });
}

function apiClients({ url, setup, seconds, traffic }: Target) {
  const { tokens, liveBuild } = setup;
  const body = resolveBody(setup);
  let nextClient = 0;
  return autocannon({
    url,
    connections: CONNECTIONS.api,
    overallRate: RATES.api,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/images",
        setupRequest: (req, context: Ctx) => {
          context.client ??= nextClient++ % API_CLIENTS;
          context.startedAt = performance.now();
          return {
            ...req,
            body,
            headers: {
              authorization: `Bearer ${tokens[context.client + 1]}`,
              "content-type": "application/json",
              "cf-connecting-ip": `10.1.0.${context.client + 1}`,
            },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(traffic.out.resolve, status, context.startedAt),
      },
      {
        method: "GET",
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          const cursor = Math.max(0, traffic.accepted.size - 50);
          return {
            ...req,
            path: `/v1/builds/${liveBuild}/logs?cursor=${cursor}&limit=100`,
            headers: {
              authorization: `Bearer ${tokens[(context.client ?? 0) + 1]}`,
              "cf-connecting-ip": `10.1.0.${(context.client ?? 0) + 1}`,
            },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(traffic.out.logPoll, status, context.startedAt),
      },
    ],
  });
}

function badgeReaders({ url, setup, seconds, traffic }: Target) {
  let viewer = 0;
  return autocannon({
    url,
    connections: CONNECTIONS.badges,
    overallRate: RATES.badges,
    duration: seconds,
    requests: [
      {
        method: "GET",
        path: `/badges/${setup.workspace}/main.svg`,
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          // Many viewers, each from its own address, as a popular README gets.
          return { ...req, headers: { "cf-connecting-ip": `10.2.${(viewer >> 8) & 255}.${viewer++ & 255}` } };
        },
        onResponse: (status, _body, context: Ctx, headers) => {
          note(traffic.out.badge, status, context.startedAt);
          if ((headers as Record<string, string> | undefined)?.["x-kiln-cache"] === "hit") traffic.badgeHits++;
        },
      },
    ],
  });
}

function runner({ url, setup, seconds, traffic }: Target) {
  let nextSeq = 0;
  return autocannon({
    url,
    connections: CONNECTIONS.runner,
    overallRate: RATES.runner,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/runner/events",
        setupRequest: (req, context: Ctx) => {
          const again = traffic.retry.shift();
          context.seq = again?.seq ?? nextSeq++;
          context.id = again?.id ?? `msg_${crypto.randomUUID()}`;
          context.startedAt = performance.now();
          // Signed at send time (fresh timestamp), with the same webhook-id on a retry.
          const { body, headers } = signedEvent(
            setup.signingSecret,
            setup.liveJob,
            { type: "log", seq: context.seq, layerKey: null, stream: "stdout", data: `evt ${context.seq}\n` },
            context.id,
          );
          return { ...req, body, headers: { ...headers, "cf-connecting-ip": "10.9.0.1" } };
        },
        onResponse: (status, body, context: Ctx) => {
          note(traffic.out.event, status, context.startedAt);
          const seq = context.seq!;
          if (status === 200) traffic.accepted.add(seq);
          else if (status === 409 && body.includes("duplicate_event"))
            traffic.accepted.add(seq); // delivered before; the answer was lost
          else {
            traffic.refused[status] = (traffic.refused[status] ?? 0) + 1;
            // 429/503 and log_gap_too_large: the runner resends the same event later.
            traffic.retry.push({ seq, id: context.id! });
          }
        },
      },
    ],
  });
}

function abusiveClient({ url, setup, seconds, traffic }: Target) {
  const body = resolveBody(setup);
  return autocannon({
    url,
    connections: CONNECTIONS.abusive,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/images",
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          return {
            ...req,
            body,
            headers: { authorization: `Bearer ${setup.tokens[0]}`, "content-type": "application/json", "cf-connecting-ip": "10.66.6.6" },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(traffic.out.abusive, status, context.startedAt),
      },
    ],
  });
}
