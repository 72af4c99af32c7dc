/**
 * Argument handling of `Image`'s local-file methods (`addLocal*` and the deprecated
 * `copyLocal*`/`copyMount`). Files either attach to containers at start-up (runtime mounts,
 * no layer) or, with `copy: true`, go into a `COPY` layer built from the context.
 */
import path from "node:path";
import { flattenStrings, splitParams } from "./args.ts";
import { InvalidError } from "./errors.ts";
import { deprecated } from "./image-checks.ts";
import type * as P from "./image-params.ts";
import { type ImageState, pushLayer, withMounts } from "./image-state.ts";
import { layerCommon } from "./layer-def.ts";
import { archivePathOf, findPythonSource, type RuntimeMount, remoteTarget, requireDir, requireFile } from "./local-files.ts";
import type { ContextSource } from "./lowering/types.ts";
import { Mount } from "./mount.ts";
import { checkParams } from "./param-check.ts";
import { FilePatternMatcher } from "./pattern-matcher.ts";

/** Local files to add: attached at start-up, or copied into a layer by `line`. */
export type FilesStep = { mounts: RuntimeMount[] } | { copy: ContextSource[]; line?: string };

// Modal's default for addLocalPythonSource: keep only Python files.
const NON_PYTHON_FILES = new FilePatternMatcher("**/*.py").invert();

/** Applies a `FilesStep`; Modal's copy layers take no force_build, so they neither inherit nor pass it on. */
export function addFiles(state: ImageState, step: FilesStep): ImageState {
  if ("mounts" in step) return withMounts(state, step.mounts);
  const { copy: context, line = "COPY . /" } = step;
  return pushLayer(state, { ...layerCommon({}), lower: () => ({ commands: ["FROM base", line], context }) }, false);
}

/** `Image.addLocalFile`: a trailing `/` on the remote path keeps the file's name. */
export function localFileStep(localPath: string, remotePath: string, params: P.ImageAddLocalFileParams): FilesStep {
  const file = requireFile(localPath);
  const remote = remoteTarget("addLocalFile", remotePath, path.basename(file));
  if (!params.copy) return { mounts: [{ kind: "file", localPath: file, remotePath: remote }] };
  return { copy: [{ kind: "file", localPath: file, archivePath: archivePathOf(remote) }] };
}

/** `Image.addLocalDir`: the directory's contents, minus `ignore`d files. */
export function localDirStep(localPath: string, remotePath: string, params: P.ImageAddLocalDirParams): FilesStep {
  const dir = requireDir(localPath);
  const remote = remoteTarget("addLocalDir", remotePath);
  const ignore = params.ignore ?? [];
  if (!params.copy) return { mounts: [{ kind: "dir", localPath: dir, remotePath: remote, ignore }] };
  return { copy: [{ kind: "dir", localPath: dir, archivePath: archivePathOf(remote), ignore }] };
}

/** `Image.addLocalPythonSource(...modules, params?)`: modules found locally, placed under `/root`. */
export function pythonSourceStep(args: readonly unknown[]): FilesStep | null {
  const { items, params } = splitParams<P.ImageAddLocalPythonSourceParams>(args);
  checkParams("addLocalPythonSource", params);
  const modules = flattenStrings("add_local_python_source", "modules", items);
  const ignore = params.ignore ?? NON_PYTHON_FILES;
  const sources = modules.map((m) => findPythonSource(m));
  if (sources.length === 0) return null;
  if (!params.copy) return { mounts: sources.map((s) => ({ ...s, ...(s.kind === "dir" ? { ignore } : {}) })) };
  return {
    copy: sources.map(
      (s): ContextSource =>
        s.kind === "dir"
          ? { kind: "dir", localPath: s.localPath, archivePath: archivePathOf(s.remotePath), ignore }
          : { kind: "file", localPath: s.localPath, archivePath: archivePathOf(s.remotePath) },
    ),
  };
}

/** Deprecated `Image.copyLocalFile`: the file goes to the context root, then `COPY <name> <remote>`. */
export function copyLocalFileStep(localPath: string, remotePath: string): FilesStep {
  deprecated("Image.copyLocalFile", "Image.addLocalFile(localPath, remotePath, { copy: true })");
  const file = requireFile(localPath);
  const base = path.basename(file);
  return { copy: [{ kind: "file", localPath: file, archivePath: base }], line: `COPY ${base} ${remotePath}` };
}

/** Deprecated `Image.copyLocalDir`: the directory is the context root, then `COPY . <remote>`. */
export function copyLocalDirStep(localPath: string, remotePath: string, params: P.ImageCopyLocalDirParams): FilesStep {
  deprecated("Image.copyLocalDir", "Image.addLocalDir(localPath, remotePath, { copy: true })");
  const dir = requireDir(localPath);
  return { copy: [{ kind: "dir", localPath: dir, archivePath: "", ignore: params.ignore ?? [] }], line: `COPY . ${remotePath}` };
}

/** Deprecated `Image.copyMount`: the mount's files, then `COPY . <remote>`. */
export function copyMountStep(mount: Mount, remotePath: string): FilesStep {
  deprecated("Image.copyMount", "Image.addLocalDir(localPath, remotePath, { copy: true })");
  if (!(mount instanceof Mount)) throw new InvalidError("copyMount expects a Mount (Mount.fromLocalDir / Mount.fromLocalFile).");
  return { copy: [...mount.sources], line: `COPY . ${remotePath}` };
}
