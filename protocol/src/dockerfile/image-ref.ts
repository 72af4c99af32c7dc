/**
 * Image reference validation with the grammar of `distribution/reference`
 * (`ParseNormalizedNamed`), which BuildKit applies to every base image and `--from` image.
 */

const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[(?:[a-fA-F0-9:]+)\\])`;
const NAME = `(?:${HOST}(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function parseReference(s: string): string | undefined {
  const m = REFERENCE.exec(s);
  if (m === null) {
    if (s === "") return "repository name must have at least one component";
    if (REFERENCE.test(s.toLowerCase())) return "invalid reference format: repository name must be lowercase";
    return "invalid reference format";
  }
  if ((m[1] ?? "").length > 255) return "repository name must not be more than 255 characters";
  const digest = m[3];
  if (digest !== undefined) {
    const [algorithm = "", encoded = ""] = digest.split(":");
    const size = DIGEST_HEX[algorithm];
    if (size === undefined) return "unsupported digest algorithm";
    if (encoded.length !== size) return "invalid checksum digest length";
    if (!/^[a-f0-9]+$/.test(encoded)) return "invalid checksum digest format";
  }
  return undefined;
}

/**
 * Why `name` is not a valid image reference, or `undefined` if it is. Short names are
 * normalized as Docker does (`alpine` is `docker.io/library/alpine`).
 */
export function imageReferenceProblem(name: string): string | undefined {
  if (/^[a-f0-9]{64}$/.test(name)) {
    return `invalid repository name (${name}), cannot specify 64-byte hexadecimal strings`;
  }
  const slash = name.indexOf("/");
  let domain = "docker.io";
  let remainder = name;
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first) {
      domain = first;
      remainder = name.slice(slash + 1);
    }
  }
  if (domain === "index.docker.io") domain = "docker.io";
  if (domain === "docker.io" && !remainder.includes("/")) remainder = `library/${remainder}`;
  const colon = remainder.indexOf(":");
  const remoteName = colon >= 0 ? remainder.slice(0, colon) : remainder;
  if (remoteName.toLowerCase() !== remoteName) {
    return `invalid reference format: repository name (${remoteName}) must be lowercase`;
  }
  return parseReference(`${domain}/${remainder}`);
}
