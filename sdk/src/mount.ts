/**
 * `Mount`: a set of local files at container paths. Only `Image.copyMount` (deprecated in
 * Modal too) uses it; new code should call `addLocalDir` / `addLocalFile` instead.
 */
import path from "node:path";
import { archivePathOf, remoteTarget, requireDir, requireFile } from "./local-files.ts";
import type { ContextSource } from "./lowering/types.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";

/** Options of `Mount.fromLocalDir`. */
export type MountFromLocalDirParams = { remotePath?: string; ignore?: IgnoreSpec };
/** Options of `Mount.fromLocalFile`. */
export type MountFromLocalFileParams = { remotePath?: string };

/** Local files gathered at container paths; immutable. */
export class Mount {
  readonly #sources: readonly ContextSource[];

  private constructor(sources: readonly ContextSource[]) {
    this.#sources = sources;
  }

  /** A mount of a local directory's contents at `remotePath` (default `/<directory name>`). */
  static fromLocalDir(localPath: string, params: MountFromLocalDirParams = {}): Mount {
    const dir = requireDir(localPath);
    const remote = remoteTarget("Mount.fromLocalDir", anchor(params.remotePath ?? path.basename(dir)));
    return new Mount([{ kind: "dir", localPath: dir, archivePath: archivePathOf(remote), ignore: params.ignore ?? [] }]);
  }

  /** A mount of one local file at `remotePath` (default `/<basename>`). */
  static fromLocalFile(localPath: string, params: MountFromLocalFileParams = {}): Mount {
    const file = requireFile(localPath);
    const remote = remoteTarget("Mount.fromLocalFile", anchor(params.remotePath ?? "/"), path.basename(file));
    return new Mount([{ kind: "file", localPath: file, archivePath: archivePathOf(remote) }]);
  }

  /** A new mount holding this mount's files and `other`'s. */
  extend(other: Mount): Mount {
    return new Mount([...this.#sources, ...other.#sources]);
  }

  /** The context sources this mount contributes to a `COPY . <dest>` layer. */
  get sources(): readonly ContextSource[] {
    return this.#sources;
  }
}

// Modal anchors mount paths at the root: PurePosixPath("/", remote_path).
function anchor(remotePath: string): string {
  return typeof remotePath === "string" && !remotePath.startsWith("/") ? `/${remotePath}` : remotePath;
}
