/**
 * Typed instructions: what BuildKit's `instructions` package makes of each parsed line.
 */

import type { Instruction } from "./parser.ts";

/** A `key=value` pair of ENV or LABEL. */
export interface KeyValue {
  /** The name, as written (variables not yet expanded). */
  key: string;
  /** The value, as written (quotes not yet removed). */
  value: string;
  /** True for the legacy `ENV key value` form. */
  noDelim: boolean;
}

/** One name of an ARG instruction, with its default if it has one. */
export interface ArgDef {
  /** The argument name. */
  key: string;
  /** The default value as written, or `undefined` when the ARG has none. */
  value: string | undefined;
}

/** A heredoc used as a COPY/ADD source: inline file content, no build context involved. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  path: string;
  /** The body, with `<<-` tab stripping already applied. */
  data: string;
  /** Whether variables in the body are expanded. */
  expand: boolean;
}

/** A heredoc attached to RUN/CMD/ENTRYPOINT. */
export interface ShellInlineFile {
  /** The heredoc name. */
  name: string;
  /** The body as written. */
  data: string;
  /** True for `<<-` (tabs are stripped when the body is used). */
  chomp: boolean;
}

/** The sources and destination of COPY/ADD. */
export interface SourcesAndDest {
  /** Source paths, patterns or URLs, as written. */
  sourcePaths: string[];
  /** Heredoc sources. */
  sourceContents: SourceContent[];
  /** The destination, as written. */
  destPath: string;
}

/** A command line of RUN/CMD/ENTRYPOINT. */
export interface ShellDependentCmdLine {
  /** The exec-form arguments, or a single shell-form string. */
  cmdLine: string[];
  /** True for the shell form (the stage's SHELL is prepended when run). */
  prependShell: boolean;
  /** Heredoc bodies following the instruction. */
  files: ShellInlineFile[];
}

interface Located {
  /** The parsed line this command came from. */
  instruction: Instruction;
}

/** FROM: the start of a build stage. */
export interface StageHeader extends Located {
  kind: "from";
  /** Base image or stage name, as written (variables unexpanded). */
  baseName: string;
  /** Lower-cased `AS` name, or "" for an unnamed stage. */
  name: string;
  /** The `--platform` value as written, or "". */
  platform: string;
}

/** COPY. */
export interface CopyCommand extends Located, SourcesAndDest {
  kind: "copy";
  /** `--from` stage name, index or image, or "" for the build context. */
  from: string;
  chown: string;
  chmod: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
}

/** ADD. */
export interface AddCommand extends Located, SourcesAndDest {
  kind: "add";
  chown: string;
  chmod: string;
  link: boolean;
  keepGitDir: boolean;
  checksum: string;
  unpack: boolean;
  exclude: string[];
}

/** RUN. */
export interface RunCommand extends Located, ShellDependentCmdLine {
  kind: "run";
  /** Raw `--mount` values, in order. */
  mounts: string[];
  /** The `from=` of each mount ("" when absent), read before variable expansion. */
  mountFroms: string[];
  /** Names of the flags that were given. */
  flagsUsed: string[];
}

/** ARG. */
export interface ArgCommand extends Located {
  kind: "arg";
  /** The declared names, with defaults where given. */
  args: ArgDef[];
}

/** Every instruction except FROM, in typed form. */
export type Command =
  | CopyCommand
  | AddCommand
  | RunCommand
  | (Located & { kind: "env"; env: KeyValue[] })
  | (Located & { kind: "label"; labels: KeyValue[] })
  | ArgCommand
  | (Located & ShellDependentCmdLine & { kind: "cmd" | "entrypoint" })
  | (Located & { kind: "healthcheck"; test: string[] })
  | (Located & { kind: "expose"; ports: string[] })
  | (Located & { kind: "user"; user: string })
  | (Located & { kind: "workdir"; path: string })
  | (Located & { kind: "volume"; volumes: string[] })
  | (Located & { kind: "stopsignal"; signal: string })
  | (Located & { kind: "shell"; shell: string[] })
  | (Located & { kind: "maintainer"; maintainer: string })
  | (Located & { kind: "onbuild"; expression: string });

/** A build stage: its FROM and the commands that follow it. */
export interface Stage extends StageHeader {
  /** The stage's commands in order. */
  commands: Command[];
}
