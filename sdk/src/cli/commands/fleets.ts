/** `kiln fleet add|ls|disable|enable|trust|untrust|rotate-secret|rm`: the workspace's runner fleets. */
import type { Command } from "commander";
import type { CliContext } from "../context.ts";
import { integerAtLeast } from "../options.ts";
import { emit, table } from "../output.ts";

type FleetRow = {
  id: string;
  name: string;
  url: string;
  gpuTypes: string[];
  maxConcurrentBuilds: number;
  disabledAt?: string | null;
  trustedWithSecrets?: boolean;
  platforms?: { native: string[]; emulated: string[] };
};

/** Adds the fleet commands to `program`. */
export function registerFleetCommands(program: Command, ctx: CliContext): void {
  const fleet = program.command("fleet").description("manage runner fleets");
  fleet
    .command("add <name> <url>")
    .description("register a fleet's dispatch URL; prints its signing secret once")
    .option("--gpu <types...>", "GPU types the fleet's machines have", [])
    .option("--max-builds <n>", "maximum concurrent builds", integerAtLeast(1), 4)
    .option("--signing-secret <secret>", "Standard Webhooks secret (default: generated and printed once)")
    .option("--trusted-with-secrets", "send this fleet secret values (needs the fleets:admin scope)")
    .option("--platform <list>", "platforms built natively, comma-separated (default: linux/amd64)")
    .option("--emulated-platform <list>", "platforms built under QEMU emulation, comma-separated (see the runner's /v1/capabilities)")
    .action(
      async (
        name: string,
        url: string,
        opts: {
          gpu: string[];
          maxBuilds: number;
          signingSecret?: string;
          trustedWithSecrets?: boolean;
          platform?: string;
          emulatedPlatform?: string;
        },
      ) => {
        const created = await ctx.client().json<{ id: string; signingSecret?: string }>("POST", ["v1", "fleets"], {
          json: {
            name,
            url,
            gpuTypes: opts.gpu,
            maxConcurrentBuilds: opts.maxBuilds,
            ...(opts.signingSecret ? { signingSecret: opts.signingSecret } : {}),
            ...(opts.trustedWithSecrets ? { trustedWithSecrets: true } : {}),
            ...platformsBody(opts.platform, opts.emulatedPlatform),
          },
        });
        emit(ctx.json(), created, () => `fleet ${created.id}${secretLine(created.signingSecret)}`);
      },
    );
  fleet
    .command("ls")
    .description("list fleets")
    .action(async () => {
      const { fleets } = await ctx.client().json<{ fleets: FleetRow[] }>("GET", ["v1", "fleets"]);
      emit(ctx.json(), fleets, () =>
        table([
          ["FLEET", "NAME", "URL", "GPUS", "PLATFORMS", "MAX", "STATE", "SECRETS"],
          ...fleets.map((f) => [
            f.id,
            f.name,
            f.url,
            f.gpuTypes.join(",") || "-",
            f.platforms ? [...f.platforms.native, ...f.platforms.emulated.map((p) => `${p}(emulated)`)].join(",") : "-",
            String(f.maxConcurrentBuilds),
            f.disabledAt ? "disabled" : "enabled",
            f.trustedWithSecrets ? "trusted" : "-",
          ]),
        ]),
      );
    });
  registerFleetChanges(fleet, ctx);
}

/** `platforms` of a fleet registration from `--platform` and `--emulated-platform` (none: the server's default). */
function platformsBody(native: string | undefined, emulated: string | undefined): Record<string, unknown> {
  if (native === undefined && emulated === undefined) return {};
  const list = (s: string | undefined) => (s ?? "").split(",").flatMap((p) => (p.trim() ? [p.trim()] : []));
  return { platforms: { native: native === undefined ? ["linux/amd64"] : list(native), emulated: list(emulated) } };
}

/** The commands that change one fleet. */
function registerFleetChanges(fleet: Command, ctx: CliContext): void {
  const patch = (id: string, body: Record<string, unknown>) =>
    ctx.client().json<FleetRow & { signingSecret?: string }>("PATCH", ["v1", "fleets", id], { json: body });
  fleet
    .command("disable <id>")
    .description("stop dispatching to a fleet (builds already on it run to the end)")
    .action(async (id: string) => {
      const row = await patch(id, { disabled: true });
      emit(ctx.json(), row, () => `fleet ${id} disabled`);
    });
  fleet
    .command("enable <id>")
    .description("dispatch to a disabled fleet again")
    .action(async (id: string) => {
      const row = await patch(id, { disabled: false });
      emit(ctx.json(), row, () => `fleet ${id} enabled`);
    });
  fleet
    .command("trust <id>")
    .description("send this fleet secret values from now on (needs the fleets:admin scope)")
    .action(async (id: string) => {
      const row = await patch(id, { trustedWithSecrets: true });
      emit(ctx.json(), row, () => `fleet ${id} is trusted with secrets`);
    });
  fleet
    .command("untrust <id>")
    .description("stop sending this fleet secret values (builds that need secrets go to trusted fleets only)")
    .action(async (id: string) => {
      const row = await patch(id, { trustedWithSecrets: false });
      emit(ctx.json(), row, () => `fleet ${id} is no longer trusted with secrets`);
    });
  fleet
    .command("rotate-secret <id>")
    .description("generate a new signing secret; printed once (give it to the fleet's runners)")
    .action(async (id: string) => {
      const row = await patch(id, { rotateSigningSecret: true });
      emit(ctx.json(), row, () => `fleet ${id}${secretLine(row.signingSecret)}`);
    });
  fleet
    .command("rm <id>")
    .description("remove a fleet")
    .action(async (id: string) => {
      await ctx.client().request("DELETE", ["v1", "fleets", id]);
      emit(ctx.json(), { removed: id }, () => `removed fleet ${id}`);
    });
}

function secretLine(secret: string | undefined): string {
  return secret ? `\nsigning secret (shown once): ${secret}` : "";
}
