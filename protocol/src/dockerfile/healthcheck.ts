/**
 * HEALTHCHECK parsing, as BuildKit's `instructions/parse.go`: the NONE and CMD forms, and
 * its interval flags in Go's duration syntax (`1m30s`). Error reasons match BuildKit's text.
 */

import { DockerfileError } from "./errors.ts";
import { atLeastOne, flagsOf } from "./instruction-args.ts";
import type { Command } from "./instruction-types.ts";
import type { Instruction } from "./parser.ts";
import { goQuote } from "./text.ts";

/** HEALTHCHECK NONE, or HEALTHCHECK [--interval=...] CMD ..., checked like BuildKit's parseHealthcheck. */
export function parseHealthcheck(inst: Instruction): Command {
  if (inst.args.length === 0) throw atLeastOne("HEALTHCHECK");
  const type = (inst.args[0] ?? "").toUpperCase();
  const rest = inst.args.slice(1);
  if (type === "NONE") {
    if (rest.length !== 0) throw new DockerfileError("HEALTHCHECK NONE takes no arguments");
    return { kind: "healthcheck", instruction: inst, test: ["NONE"] };
  }
  const f = flagsOf(inst, (f) => {
    for (const name of ["interval", "timeout", "start-period", "start-interval", "retries"]) f.addString(name);
  });
  if (type !== "CMD") throw new DockerfileError(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  const cmd = inst.json ? rest : rest.length === 0 ? [] : [rest.join(" ")];
  if (cmd.length === 0) throw new DockerfileError("Missing command after HEALTHCHECK CMD");
  for (const name of ["interval", "timeout", "start-period", "start-interval"]) checkInterval(name, f.string(name));
  const retries = f.string("retries");
  if (retries !== "") {
    if (!/^[+-]?[0-9]+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31) {
      throw new DockerfileError(`strconv.ParseInt: parsing ${goQuote(retries)}: invalid syntax`);
    }
    if (Number(retries) < 0) throw new DockerfileError(`--retries cannot be negative (${Number(retries)})`);
  }
  return { kind: "healthcheck", instruction: inst, test: [inst.json ? "CMD" : "CMD-SHELL", ...cmd] };
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** Checks a Go duration (`1m30s`) and BuildKit's 1ms minimum for non-zero intervals. */
function checkInterval(name: string, value: string): void {
  if (value === "") return;
  const body = value.replace(/^[+-]/, "");
  let ms = 0;
  const ok =
    body === "0" ||
    (body !== "" &&
      body.replace(/([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)/gy, (_m, num: string, unit: string) => {
        if (num === "" || num === ".") return "x";
        ms += Number(num) * (DURATION_UNITS[unit] ?? 0);
        return "";
      }) === "");
  if (!ok) throw new DockerfileError(`time: invalid duration ${goQuote(value)}`, { hint: "use a duration such as 30s" });
  if (value.startsWith("-")) ms = -ms;
  if (ms !== 0 && ms < 1) throw new DockerfileError(`Interval ${goQuote(name)} cannot be less than 1ms`);
}
