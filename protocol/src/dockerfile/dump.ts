/**
 * BuildKit's parse-tree dump (`Node.Dump()`), for comparing Kiln's parser with BuildKit's
 * golden files and for debugging.
 */

import type { DockerfileAst, Instruction } from "./parser.ts";
import { goQuote, trimSpace } from "./text.ts";

/** One instruction in BuildKit's dump syntax, without the surrounding parentheses. */
export function dumpInstruction(inst: Instruction): string {
  let out = inst.keyword.toLowerCase();
  if (inst.flags.length > 0) out += ` [${inst.flags.map(goQuote).join(" ")}]`;
  if (inst.sub !== undefined) return trimSpace(`${out} (${dumpInstruction(inst.sub)})`);
  for (const arg of inst.args) out += ` ${goQuote(arg)}`;
  return trimSpace(out);
}

/** The whole file as BuildKit dumps it: one `(instruction ...)` line per instruction. */
export function dumpDockerfile(ast: DockerfileAst): string {
  return ast.instructions.map((inst) => `(${dumpInstruction(inst)})\n`).join("");
}
