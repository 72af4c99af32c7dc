/**
 * Local-file helpers for `addLocal*`, `copyLocal*`, `Mount` and Python source lookup:
 * path checks that run synchronously at call time, so a typo fails before any build.
 */
import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { InvalidError, NotFoundError } from "./errors.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";

/** Files attached to containers at start-up instead of being built into a layer. */
export type RuntimeMount = {
  kind: "file" | "dir";
  localPath: string;
  remotePath: string;
  ignore?: IgnoreSpec;
};

/** Expands `~` and resolves against the current directory, as Python's expanduser + abspath. */
export function resolveLocal(localPath: string): string {
  if (typeof localPath !== "string" || localPath === "") throw new InvalidError("A local path must be a non-empty string.");
  const expanded = localPath === "~" || localPath.startsWith("~/") ? path.join(os.homedir(), localPath.slice(1)) : localPath;
  return path.resolve(expanded);
}

/** Resolves a local directory, throwing `NotFoundError` when it is missing or not a directory. */
export function requireDir(localPath: string): string {
  const resolved = resolveLocal(localPath);
  if (!existsSync(resolved)) throw new NotFoundError(`local dir ${localPath} does not exist`);
  if (!statSync(resolved).isDirectory()) throw new NotFoundError(`local dir ${localPath} is not a directory`);
  return resolved;
}

/** Resolves a local file, throwing `NotFoundError` when it is missing or not a regular file. */
export function requireFile(localPath: string, what = "local file"): string {
  const resolved = resolveLocal(localPath);
  if (!existsSync(resolved)) throw new NotFoundError(`${what} ${localPath} does not exist`);
  if (!statSync(resolved).isFile()) throw new NotFoundError(`${what} ${localPath} is not a file`);
  return resolved;
}

/** Validates an absolute container path; a trailing `/` appends `basename` when given. */
export function remoteTarget(method: string, remotePath: unknown, basename?: string): string {
  if (typeof remotePath !== "string" || !remotePath.startsWith("/")) {
    throw new InvalidError(
      `image.${method}() currently only supports absolute remotePath values; got ${JSON.stringify(remotePath)}. Use a path like "/app".`,
    );
  }
  const target = basename !== undefined && remotePath.endsWith("/") ? `${remotePath}${basename}` : remotePath;
  return path.posix.normalize(target);
}

/** The context-relative archive path for an absolute container path (`/app` -> `app`). */
export function archivePathOf(remotePath: string): string {
  return path.posix.normalize(remotePath).replace(/^\/+/, "").replace(/\/+$/, "");
}

/** Where a Python module or package lives locally, and where it goes in the image. */
export type PythonSource = { kind: "file" | "dir"; localPath: string; remotePath: string };

/**
 * Finds a Python module on disk the way `importlib.util.find_spec` would for plain source
 * trees: the current directory first, then each `PYTHONPATH` entry. A package goes to
 * `/root/<pkg>`, a module to `/root/<mod>.py`, as in Modal.
 */
export function findPythonSource(moduleName: string, env: NodeJS.ProcessEnv = process.env): PythonSource {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(moduleName)) {
    throw new InvalidError(`'${moduleName}' is not a valid Python module name.`);
  }
  const parts = moduleName.split(".");
  const roots = [process.cwd(), ...(env.PYTHONPATH ?? "").split(path.delimiter).filter(Boolean)];
  for (const root of roots) {
    const packageDir = path.join(root, ...parts);
    if (existsSync(path.join(packageDir, "__init__.py"))) {
      return { kind: "dir", localPath: packageDir, remotePath: `/root/${parts.join("/")}` };
    }
    const moduleFile = `${packageDir}.py`;
    if (existsSync(moduleFile) && statSync(moduleFile).isFile()) {
      return { kind: "file", localPath: moduleFile, remotePath: `/root/${parts.join("/")}.py` };
    }
  }
  throw new NotFoundError(
    `Python module '${moduleName}' was not found in the current directory or on PYTHONPATH. ` +
      "Run from the directory that contains it, or add its parent directory to PYTHONPATH.",
  );
}
