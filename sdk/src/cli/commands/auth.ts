/** `kiln login`, `logout`, `whoami` and `profile`: which server and token the CLI uses. */
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Command } from "commander";
import { KilnClient } from "../../client.ts";
import { configPath, DEFAULT_PROFILE, profileName, readConfig, writeConfig } from "../config.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

/** What `GET /v1/whoami` answers. */
type WhoAmI = {
  workspace: { id: string; name: string } | null;
  token: { id: string | null; name: string; kind: string; scopes: string[] };
};

/** Adds the commands that manage logins and profiles to `program`. */
export function registerAuthCommands(program: Command, ctx: CliContext): void {
  program
    .command("login")
    .description("check a token and store it with the server in a profile (the token is read from the prompt or stdin)")
    .action(async () => {
      const g = ctx.globals();
      const config = readConfig();
      const name = profileName(config, g.profile);
      const server = g.server ?? process.env.KILN_SERVER_URL ?? config.profiles[name]?.server;
      if (!server) {
        throw new CliError("kiln login needs the server's URL.", {
          fix: "Run `kiln login --server https://kiln.example.com` (and --profile NAME for a second server or workspace).",
          exitCode: EXIT.usage,
        });
      }
      const token = g.token ?? (await readToken(server));
      const who = await new KilnClient({ serverUrl: server, token }).json<WhoAmI>("GET", ["v1", "whoami"]);
      config.profiles[name] = { server: new KilnClient({ serverUrl: server }).serverUrl, token };
      config.active = name;
      writeConfig(config);
      const workspace = who.workspace?.name ?? "(admin, no workspace)";
      emit(ctx.json(), { profile: name, server, workspace: who.workspace, token: who.token, config: configPath() }, () =>
        [`Logged in to ${server} as ${who.token.name} in ${workspace}.`, `Profile '${name}' saved to ${configPath()} and active.`].join(
          "\n",
        ),
      );
    });

  program
    .command("logout")
    .description("forget the profile's token (the token stays valid on the server; revoke it with `kiln token revoke`)")
    .action(() => {
      const config = readConfig();
      const name = profileName(config, ctx.globals().profile);
      if (!config.profiles[name])
        throw new CliError(`No profile named '${name}'.`, { fix: "`kiln profile ls` lists them.", exitCode: EXIT.usage });
      delete config.profiles[name];
      if (config.active === name) delete config.active;
      writeConfig(config);
      emit(ctx.json(), { loggedOut: name }, () => `Removed profile '${name}'.`);
    });

  program
    .command("whoami")
    .description("show the server, profile, workspace and token in use")
    .action(async () => {
      const connection = ctx.connection();
      const client = ctx.client();
      const who = await client.json<WhoAmI>("GET", ["v1", "whoami"]);
      const result = { server: client.serverUrl, profile: connection.source === "profile" ? connection.profile : null, ...who };
      emit(ctx.json(), result, () =>
        table([
          ["server", client.serverUrl],
          ["credentials from", connection.source === "profile" ? `profile '${connection.profile}'` : connection.source],
          ["workspace", who.workspace?.name ?? "(none: admin token)"],
          ["token", `${who.token.name} (${who.token.kind})`],
          ["scopes", who.token.scopes.join(", ") || "-"],
        ]),
      );
    });

  registerProfileCommands(program, ctx);
}

/** `kiln profile ls` and `kiln profile use NAME`. */
function registerProfileCommands(program: Command, ctx: CliContext): void {
  const profile = program.command("profile").description("list and switch profiles");
  profile
    .command("ls")
    .description("list profiles; * marks the active one")
    .action(() => {
      const config = readConfig();
      const active = config.active ?? DEFAULT_PROFILE;
      const rows = Object.entries(config.profiles).map(([name, p]) => ({ name, server: p.server, active: name === active }));
      emit(ctx.json(), rows, () =>
        rows.length === 0
          ? "No profiles yet: run `kiln login --server URL`."
          : table([["", "PROFILE", "SERVER"], ...rows.map((r) => [r.active ? "*" : "", r.name, r.server])]),
      );
    });
  profile
    .command("use <name>")
    .description("make a profile the active one")
    .action((name: string) => {
      const config = readConfig();
      if (!config.profiles[name]) {
        throw new CliError(`No profile named '${name}'.`, {
          fix: `Create it with \`kiln login --profile ${name} --server URL\`.`,
          exitCode: EXIT.usage,
        });
      }
      config.active = name;
      writeConfig(config);
      emit(ctx.json(), { active: name }, () => `Profile '${name}' is now active.`);
    });
}

/** The token from stdin when it is piped, else from a prompt that does not echo it. */
async function readToken(server: string): Promise<string> {
  const token = process.stdin.isTTY ? await prompt(`Token for ${server}: `) : await readAll(process.stdin);
  const trimmed = token.trim();
  if (!trimmed) {
    throw new CliError("No token given.", {
      fix: "Paste a token at the prompt or pipe one in: `echo $TOKEN | kiln login --server URL` (an admin creates tokens with `kiln token create`).",
      exitCode: EXIT.usage,
    });
  }
  return trimmed;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** Asks on stderr and reads one line without echoing what is typed. */
function prompt(question: string): Promise<string> {
  process.stderr.write(question);
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  return new Promise((resolve) => {
    rl.question("", (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    });
  });
}
