/**
 * `kiln webhook add|ls|rm|deliveries|test|redeliver`: completion notifications (decision 0017).
 * A subscription's signing secret is printed once, by `add`.
 */
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEventType,
  type WebhookSubscription,
  type WebhookSubscriptionCreated,
} from "@kiln-build/protocol";
import type { Command } from "commander";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

/** Adds the webhook commands to `program`. */
export function registerWebhookCommands(program: Command, ctx: CliContext): void {
  const webhook = program.command("webhook").description("notify a URL when builds end (signed Standard Webhooks)");
  webhook
    .command("add <url>")
    .description("subscribe an https URL to build events; prints the signing secret once")
    .option("--events <list>", `comma-separated events (${WEBHOOK_EVENT_TYPES.join(", ")})`, WEBHOOK_EVENT_TYPES.join(","))
    .option("--description <text>", "what the subscription is for")
    .action(async (url: string, opts: { events: string; description?: string }) => {
      const events = parseEvents(opts.events);
      checkUrl(url);
      const created = await ctx.client().json<WebhookSubscriptionCreated>("POST", ["v1", "webhooks"], {
        json: { url, events, ...(opts.description ? { description: opts.description } : {}) },
      });
      emit(
        ctx.json(),
        created,
        () =>
          `webhook ${created.id} -> ${created.url} (${created.events.join(",")})\nsigning secret: ${created.secret}\n(shown once, store it now; receivers verify the webhook-signature header with it)`,
      );
    });
  webhook
    .command("ls")
    .alias("list")
    .description("list the workspace's webhook subscriptions")
    .action(async () => {
      const { webhooks } = await ctx.client().json<{ webhooks: WebhookSubscription[] }>("GET", ["v1", "webhooks"]);
      emit(ctx.json(), webhooks, () =>
        table([
          ["WEBHOOK", "URL", "EVENTS", "DESCRIPTION"],
          ...webhooks.map((w) => [w.id, w.url, w.events.join(","), w.description ?? ""]),
        ]),
      );
    });
  webhook
    .command("rm <id>")
    .alias("delete")
    .description("delete a subscription, its pending deliveries and its delivery log")
    .action(async (id: string) => {
      await ctx.client().request("DELETE", ["v1", "webhooks", id]);
      emit(ctx.json(), { deleted: id }, () => `deleted webhook ${id}`);
    });
  webhook
    .command("deliveries <id>")
    .description("show a subscription's delivery log, newest first")
    .option("--limit <n>", "how many deliveries (1-100)", "20")
    .action(async (id: string, opts: { limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100)
        throw new CliError(`--limit ${opts.limit} is not a number from 1 to 100.`, { exitCode: EXIT.usage });
      const { deliveries } = await ctx.client().json<{ deliveries: WebhookDelivery[] }>("GET", ["v1", "webhooks", id, "deliveries"], {
        query: { limit: String(limit) },
      });
      emit(ctx.json(), deliveries, () => deliveryTable(deliveries));
    });
  webhook
    .command("test <id>")
    .description("send a webhook.ping event to the subscription")
    .action(async (id: string) => {
      const sent = await ctx.client().json<{ eventId: string }>("POST", ["v1", "webhooks", id, "test"]);
      emit(ctx.json(), sent, () => `queued ping ${sent.eventId}; see \`kiln webhook deliveries ${id}\``);
    });
  webhook
    .command("redeliver <id> <eventId>")
    .description("deliver a finished delivery again")
    .action(async (id: string, eventId: string) => {
      await ctx.client().request("POST", ["v1", "webhooks", id, "deliveries", eventId, "redeliver"]);
      emit(ctx.json(), { redelivering: eventId }, () => `redelivering ${eventId}`);
    });
}

/** `--events` as a list of known event types; anything else is a usage error before any request. */
export function parseEvents(list: string): WebhookEventType[] {
  const events = [
    ...new Set(
      list
        .split(",")
        .map((e) => e.trim())
        .filter(Boolean),
    ),
  ];
  const unknown = events.filter((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e));
  if (events.length === 0 || unknown.length > 0) {
    throw new CliError(unknown.length ? `Unknown webhook event '${unknown[0]}'.` : "No webhook events given.", {
      fix: `Pass --events with some of: ${WEBHOOK_EVENT_TYPES.join(", ")}.`,
      exitCode: EXIT.usage,
    });
  }
  return events as WebhookEventType[];
}

function checkUrl(url: string): void {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {}
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:"))
    throw new CliError(`'${url}' is not an http(s) URL.`, {
      fix: "Pass the receiver's full URL, e.g. https://ci.example.com/kiln-hook.",
      exitCode: EXIT.usage,
    });
}

function deliveryTable(deliveries: WebhookDelivery[]): string {
  return table([
    ["EVENT", "TYPE", "IMAGE", "STATE", "ATTEMPTS", "LAST", "NEXT"],
    ...deliveries.map((d) => {
      const last = d.attempts.at(-1);
      const lastText = last ? (last.statusCode !== null && last.error === null ? String(last.statusCode) : (last.error ?? "")) : "-";
      return [d.id, d.type, d.imageId ?? "-", d.state, String(d.attemptCount), lastText.slice(0, 60), d.nextAttemptAt ?? "-"];
    }),
  ]);
}
