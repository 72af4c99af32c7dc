/**
 * `runFunction` definitions. A JavaScript function's source, its explicit arguments and
 * declared globals enter the layer definition (so editing any of them rebuilds); closures
 * are not captured, which is why globals must be declared. A Python function is named by
 * module file and function name; the module's whole source enters the definition.
 */
import { readFileSync } from "node:fs";
import type { LayerSpec } from "@kiln-build/protocol";
import { InvalidError } from "./errors.ts";
import type { ImageRunFunctionParams, PythonFunctionRef } from "./image-params.ts";
import { requireFile } from "./local-files.ts";

/** The build-function part of a layer spec. */
export type BuildFunction = NonNullable<LayerSpec["buildFunction"]>;

/** Modal's limit on serialised build-function inputs. */
export const MAX_FUNCTION_INPUT_BYTES = 2 * 1024 * 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Validates a `runFunction` call now and returns a lazy producer of its definition. */
export function buildFunctionDef(
  fn: ((...args: never[]) => unknown) | PythonFunctionRef,
  params: ImageRunFunctionParams,
): () => BuildFunction {
  const args = jsonValue(params.args ?? [], "args") as Json[];
  if (!Array.isArray(args)) throw new InvalidError("runFunction `args` must be an array.");
  const kwargs = jsonObject(params.kwargs ?? {}, "kwargs");
  const globals = jsonObject(params.globals ?? {}, "globals");
  const size = new TextEncoder().encode(JSON.stringify({ args, kwargs, globals })).byteLength;
  if (size > MAX_FUNCTION_INPUT_BYTES) {
    throw new InvalidError(
      `Arguments to \`runFunction\` are too large (${size} bytes). Maximum size is ${MAX_FUNCTION_INPUT_BYTES} bytes.`,
    );
  }
  const timeoutSeconds = params.timeout ?? 3600;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 86_400) {
    throw new InvalidError("runFunction `timeout` must be a whole number of seconds between 1 and 86400.");
  }
  const common = { args, kwargs, globals, timeoutSeconds };

  if (typeof fn === "function") {
    const source = Function.prototype.toString.call(fn);
    if (source.includes("[native code]"))
      throw new InvalidError(
        "Image.runFunction needs a function written in JavaScript; built-in and bound functions have no source to send.",
      );
    if (/^class\b/.test(source)) throw new InvalidError("Image.runFunction expects a function, not a class.");
    if (!fn.name) {
      throw new InvalidError(
        "Image.runFunction does not support anonymous (lambda) functions; declare a named function or assign it to a const first.",
      );
    }
    return () => ({ language: "javascript", name: fn.name, source, ...common });
  }
  if (fn === null || typeof fn !== "object" || typeof fn.file !== "string" || typeof fn.name !== "string") {
    throw new InvalidError(`Argument to Image.runFunction must be a function or { file, name }, not ${fn === null ? "null" : typeof fn}.`);
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fn.name)) throw new InvalidError(`'${fn.name}' is not a Python function name.`);
  const file = requireFile(fn.file, "Python module");
  const name = fn.name;
  return () => ({ language: "python", name, source: readFileSync(file, "utf8"), ...common });
}

function jsonValue(value: unknown, where: string): Json {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidError(`runFunction \`${where}\` contains a non-finite number.`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => jsonValue(v, where));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return jsonObject(value as Record<string, unknown>, where);
  }
  throw new InvalidError(
    `runFunction \`${where}\` must hold only JSON values (null, booleans, numbers, strings, arrays, plain objects); found ${typeof value}.`,
  );
}

function jsonObject(value: Record<string, unknown>, where: string): { [key: string]: Json } {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new InvalidError(`runFunction \`${where}\` must be a plain object.`);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v, where)]));
}
