/** `kiln logs BUILD [--follow]`: prints a build's log, resuming across dropped connections. */
import { followLog, LineAssembler } from "../build-logs.ts";
import type { KilnClient } from "../client.ts";

/** Prints the log; without --follow, stops at what exists now. */
export async function followLogCommand(client: KilnClient, buildId: string, follow: boolean): Promise<void> {
  const lines = new LineAssembler();
  if (follow) {
    for await (const chunk of followLog(client, buildId)) for (const line of lines.push(chunk)) process.stdout.write(`${line}\n`);
  } else {
    let cursor = 0;
    for (;;) {
      const page = await client.json<{ chunks: Parameters<LineAssembler["push"]>[0][]; cursor: number }>(
        "GET",
        ["v1", "builds", buildId, "logs"],
        { query: { cursor } },
      );
      for (const chunk of page.chunks) for (const line of lines.push(chunk)) process.stdout.write(`${line}\n`);
      if (page.chunks.length === 0 || page.cursor === cursor) break;
      cursor = page.cursor;
    }
  }
  for (const rest of lines.flush()) process.stdout.write(`${rest.line}\n`);
}
