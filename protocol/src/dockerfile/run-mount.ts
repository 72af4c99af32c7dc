/**
 * `RUN --mount=type=...,source=...,from=...` options, parsed like BuildKit's
 * `commands_runmount.go` (CSV fields, key=value pairs, per-type rules).
 */

import { DockerfileError } from "./errors.ts";

/** One parsed `--mount` option. */
export interface Mount {
  /** `bind` (default), `cache`, `tmpfs`, `secret` or `ssh`. */
  type: string;
  /** Stage or image the mount reads from; "" for the build context (bind) or nothing. */
  from: string;
  /** Path inside `from` (or the build context); "" means its root. */
  source: string;
  /** Where the mount appears in the container. */
  target: string;
  /** Whether the mount is read-only. */
  readOnly: boolean;
}

const MOUNT_TYPES = new Set(["bind", "cache", "tmpfs", "secret", "ssh"]);
const SHARING = new Set(["shared", "private", "locked"]);
const FLAG_KEYS = new Set(["readonly", "ro", "readwrite", "rw", "required"]);
const KEYS = "type, from, source, target, readonly, id, sharing, required, mode, uid, gid, src, dst, ro, rw, readwrite";

function mountError(reason: string, hint?: string): DockerfileError {
  return hint === undefined ? new DockerfileError(reason) : new DockerfileError(reason, { hint });
}

/** Splits one CSV record like Go's `encoding/csv` (strict quotes, no trimming). */
export function parseCsvRecord(line: string): string[] {
  if (line === "") throw mountError("failed to parse csv mounts: EOF", "give at least type=...");
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] !== '"') {
      const comma = line.indexOf(",", i);
      const field = comma < 0 ? line.slice(i) : line.slice(i, comma);
      if (field.includes('"')) {
        throw mountError('failed to parse csv mounts: bare " in non-quoted-field', 'quote the whole field: "key=value"');
      }
      fields.push(field);
      if (comma < 0) return fields;
      i = comma + 1;
      continue;
    }
    let field = "";
    i++;
    for (;;) {
      const q = line.indexOf('"', i);
      if (q < 0) throw mountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
      field += line.slice(i, q);
      i = q + 1;
      if (line[i] === '"') {
        field += '"';
        i++;
      } else if (line[i] === ",") {
        i++;
        fields.push(field);
        break;
      } else if (i >= line.length) {
        fields.push(field);
        return fields;
      } else {
        throw mountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
      }
    }
  }
}

function parseBool(key: string, value: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw mountError(`invalid value for ${key}: ${value}`, "use true or false");
}

function parseUint(key: string, value: string, radix: 8 | 10): void {
  const ok = radix === 8 ? /^[0-7]+$/.test(value) : /^[0-9]+$/.test(value);
  if (!ok || Number.parseInt(value, radix) > 0xffffffff) throw mountError(`invalid value ${value} for ${key}`);
}

/**
 * The `from=` of each mount, read before variables are known (BuildKit's parse-time
 * pass). A `from` that uses a variable is an error: BuildKit resolves mount sources
 * before it can expand them.
 */
export function mountSources(specs: readonly string[]): string[] {
  return specs.map((spec) => {
    let from = "";
    for (const field of parseCsvRecord(spec)) {
      const eq = field.indexOf("=");
      if (eq < 0 && !FLAG_KEYS.has(field.toLowerCase())) {
        throw mountError(`invalid field '${field}' must be a key=value pair`);
      }
      if (eq < 0 || field.slice(0, eq).toLowerCase() !== "from") continue;
      from = field.slice(eq + 1);
      if (/\$[^\n]/.test(from)) {
        throw mountError("'from' doesn't support variable expansion, define alias stage instead");
      }
    }
    return from;
  });
}

/** Parses one `--mount` value, expanding each option value with `expand`. */
export function parseMount(spec: string, expand: (word: string) => string): Mount {
  const m: Mount = { type: "bind", from: "", source: "", target: "", readOnly: false };
  let roAuto = true;
  let sharing = "";
  let id = "";
  let fileInfo = "";
  for (const field of parseCsvRecord(spec)) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === "readonly" || key === "ro" || key === "readwrite" || key === "rw") {
        m.readOnly = key === "readonly" || key === "ro";
        roAuto = false;
        continue;
      }
      if (key === "required") {
        if (m.type === "secret" || m.type === "ssh") continue;
        throw mountError(`unexpected key '${key}' for mount type '${m.type}'`, "required applies to secret and ssh mounts");
      }
      throw mountError(`invalid field '${field}' must be a key=value pair`);
    }
    const value = expand(field.slice(eq + 1));
    switch (key) {
      case "type":
        if (!MOUNT_TYPES.has(value.toLowerCase())) {
          throw mountError(`unsupported mount type "${value}"`, "use bind, cache, tmpfs, secret or ssh");
        }
        m.type = value.toLowerCase();
        break;
      case "from":
        m.from = value;
        break;
      case "source":
      case "src":
        m.source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        m.target = value;
        break;
      case "readonly":
      case "ro":
        m.readOnly = parseBool(key, value);
        roAuto = false;
        break;
      case "readwrite":
      case "rw":
        m.readOnly = !parseBool(key, value);
        roAuto = false;
        break;
      case "required":
        if (m.type !== "secret" && m.type !== "ssh") {
          throw mountError(`unexpected key '${key}' for mount type '${m.type}'`, "required applies to secret and ssh mounts");
        }
        parseBool(key, value);
        break;
      case "id":
        id = value;
        break;
      case "sharing":
        if (!SHARING.has(value.toLowerCase())) {
          throw mountError(`unsupported sharing value "${value}"`, "use shared, private or locked");
        }
        sharing = value.toLowerCase();
        break;
      case "mode":
        parseUint(key, value, 8);
        fileInfo ||= key;
        break;
      case "uid":
      case "gid":
        parseUint(key, value, 10);
        fileInfo ||= key;
        break;
      default:
        throw mountError(`unexpected key '${key}' in '${field}'`, `valid keys are ${KEYS}`);
    }
  }
  validateMount(m, { roAuto, sharing, id, fileInfo });
  return m;
}

function validateMount(m: Mount, o: { roAuto: boolean; sharing: string; id: string; fileInfo: string }): void {
  const fileInfoAllowed = m.type === "secret" || m.type === "ssh" || m.type === "cache";
  if (o.fileInfo !== "" && !fileInfoAllowed) {
    throw mountError(`${o.fileInfo} not allowed for "${m.type}" type mounts`);
  }
  if (o.roAuto) m.readOnly = m.type !== "cache" && m.type !== "tmpfs";
  if (o.sharing !== "" && m.type !== "cache") throw mountError(`invalid cache sharing set for ${m.type} mount`);
  if (m.type === "secret") {
    if (m.from !== "") throw mountError("secret mount should not have a from");
    if (o.sharing !== "") throw mountError("secret mount should not define sharing");
    if (m.source === "" && m.target === "" && o.id === "") {
      throw mountError("invalid secret mount. one of source, target required", "give id=, source= or target=");
    }
    if (m.source !== "" && o.id !== "") throw mountError("both source and id can't be set");
  }
}
