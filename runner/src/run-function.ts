/**
 * `runFunction` layers: the runner writes the function's definition and a small harness
 * into the build context and appends one RUN step that bind-mounts them (so they never
 * enter the image) and runs the harness with `node` or `python` inside the image. The
 * harness sets KILN_IMAGE_KEY (so `image.imports()` knows it runs inside the image),
 * defines the declared globals, calls the function with its JSON arguments and enforces
 * its timeout.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { JobLayer } from "@kiln-build/protocol";

/** Directory, inside the build context, that holds the harness. */
export const FUNCTION_CONTEXT_DIR = ".kiln-function";
/** Where the harness is mounted during the step. */
export const FUNCTION_MOUNT = "/run/kiln/function";

const JS_HARNESS = `// Kiln runFunction harness (JavaScript): runs once at build time, then is unmounted.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const def = JSON.parse(readFileSync(new URL("./function.json", import.meta.url), "utf8"));
process.env.KILN_IMAGE_KEY = def.imageKey;
if (def.imageId) process.env.KILN_IMAGE_ID = def.imageId;
globalThis.require ??= createRequire(process.cwd() + "/");
for (const [name, value] of Object.entries(def.globals)) globalThis[name] = value;
const timer = setTimeout(() => {
  console.error(\`runFunction \${def.name} timed out after \${def.timeoutSeconds} s\`);
  process.exit(124);
}, def.timeoutSeconds * 1000);
timer.unref();
let fn;
try {
  fn = (0, eval)("(" + def.source + ")");
} catch {
  // Method shorthand ("name(a) { ... }") is only valid inside an object literal.
  fn = (0, eval)("({" + def.source + "})")[def.name];
}
if (typeof fn !== "function") throw new Error(\`runFunction: \${def.name} is not a function\`);
const args = [...def.args];
if (Object.keys(def.kwargs).length > 0) args.push(def.kwargs);
await fn(...args);
clearTimeout(timer);
`;

const PY_HARNESS = `# Kiln runFunction harness (Python): runs once at build time, then is unmounted.
import asyncio, inspect, json, os, signal, sys, types
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "function.json")) as f:
    d = json.load(f)
os.environ["KILN_IMAGE_KEY"] = d["imageKey"]
if d.get("imageId"):
    os.environ["KILN_IMAGE_ID"] = d["imageId"]
def _timeout(signum, frame):
    print("runFunction %s timed out after %d s" % (d["name"], d["timeoutSeconds"]), file=sys.stderr)
    os._exit(124)
signal.signal(signal.SIGALRM, _timeout)
signal.alarm(d["timeoutSeconds"])
module = types.ModuleType("kiln_build_module")
module.__file__ = os.path.join(here, "module.py")
sys.modules["kiln_build_module"] = module
for name, value in d["globals"].items():
    setattr(module, name, value)
exec(compile(d["source"], module.__file__, "exec"), module.__dict__)
result = getattr(module, d["name"])(*d["args"], **d["kwargs"])
if inspect.iscoroutine(result):
    asyncio.run(result)
`;

/**
 * Writes the harness for `layer`'s build function under `contextDir` and returns the RUN
 * line that executes it.
 */
export async function prepareBuildFunction(layer: JobLayer, contextDir: string): Promise<string> {
  const fn = layer.buildFunction;
  if (!fn) throw new Error("layer has no build function");
  const dir = path.join(contextDir, FUNCTION_CONTEXT_DIR);
  // Exclusive: an archive entry of the same name must not be overwritten or followed.
  await mkdir(dir, { mode: 0o755 });
  const def = { ...fn, imageKey: layer.key };
  await writeFile(path.join(dir, "function.json"), JSON.stringify(def), { flag: "wx", mode: 0o644 });
  const mount = `--mount=type=bind,source=${FUNCTION_CONTEXT_DIR},target=${FUNCTION_MOUNT}`;
  if (fn.language === "javascript") {
    await writeFile(path.join(dir, "run.mjs"), JS_HARNESS, { flag: "wx", mode: 0o644 });
    return `RUN ${mount} node ${FUNCTION_MOUNT}/run.mjs`;
  }
  await writeFile(path.join(dir, "run.py"), PY_HARNESS, { flag: "wx", mode: 0o644 });
  await writeFile(path.join(dir, "module.py"), fn.source, { flag: "wx", mode: 0o644 });
  return `RUN ${mount} python ${FUNCTION_MOUNT}/run.py`;
}
