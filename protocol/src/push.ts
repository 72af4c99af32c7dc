/**
 * Pushes to external registries (decision 0019): the push targets of an image submission,
 * the labels and OCI annotations put on every pushed image, the push part of a runner job,
 * and the per-target result the API shows. Pure module, imported by the SDK, the Worker and
 * the runner, so a reference is judged by the same OCI grammar everywhere.
 */
import { z } from "zod";
import { Sha256Digest } from "./digest.ts";
import { SecretName } from "./names.ts";
import { PushAttestationsStatusSchema } from "./push-attestation.ts";

/** Most push targets one submission names. */
export const MAX_PUSH_TARGETS = 16;
/** Most labels (or annotations) a submission sets. */
export const MAX_LABELS = 64;
/** Longest label or annotation key. */
export const MAX_LABEL_KEY_CHARS = 128;
/** Longest label or annotation value. */
export const MAX_LABEL_VALUE_CHARS = 4096;
/** Longest push target reference. */
export const MAX_PUSH_REFERENCE_CHARS = 512;

// The grammar of github.com/distribution/reference (regexp.go), anchored.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

/** A push target split into its parts; `host` is `docker.io` for Docker Hub names. */
export type PushReferenceParts = { host: string; repository: string; tag: string };

/**
 * Parses a push target by the OCI reference grammar: `[host[:port]/]path:tag`. A tag is
 * required (what is pushed gets new digests, so a digest cannot name it); a first component
 * without `.` or `:` that is not `localhost` is a Docker Hub path, as `docker push` reads it.
 * Returns an error message instead of throwing.
 */
export function parsePushReference(reference: string): PushReferenceParts | { error: string } {
  if (reference.length > MAX_PUSH_REFERENCE_CHARS) return { error: `at most ${MAX_PUSH_REFERENCE_CHARS} characters` };
  const match = REFERENCE.exec(reference);
  if (!match) return { error: "not an image reference of the form host/name:tag (lowercase name components)" };
  let [, host, path, tag, digest] = match;
  if (digest) return { error: "name a tag, not a digest: the pushed image's digest is known only once it is pushed" };
  if (!tag) return { error: "a tag is required (host/name:tag)" };
  if (host && !host.includes(".") && !host.includes(":") && host !== "localhost") {
    // `org/app:v1`: the first component is a path component of Docker Hub, not a host.
    path = `${host}/${path}`;
    host = undefined;
  }
  if (!host) {
    host = "docker.io";
    if (!path!.includes("/")) path = `library/${path}`;
  }
  if (host.length + 1 + path!.length > 255) return { error: "the repository name is longer than 255 characters" };
  return { host, repository: path!, tag };
}

/** A push target reference, judged by {@link parsePushReference}. */
export const PushReference = z
  .string()
  .max(MAX_PUSH_REFERENCE_CHARS)
  .superRefine((reference, ctx) => {
    const parsed = parsePushReference(reference);
    if ("error" in parsed) ctx.addIssue({ code: "custom", message: `push target ${JSON.stringify(reference)}: ${parsed.error}` });
  });

/** One target of a push: where to, and the Kiln secret holding its login (null: anonymous, e.g. a local registry). */
export const PushTargetSchema = z.object({ reference: PushReference, secret: SecretName.nullable() }).strict();

/** One push target. */
export type PushTarget = z.infer<typeof PushTargetSchema>;

/** A label or annotation key: printable, no spaces (OCI recommends reverse-DNS keys). */
const LabelKey = z
  .string()
  .min(1)
  .max(MAX_LABEL_KEY_CHARS)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, "letters, digits, '.', '_', '/' or '-', starting with a letter or digit");

/** Labels or annotations: at most 64, keys bounded, values at most 4 KiB. */
export const LabelMapSchema = z
  .record(LabelKey, z.string().max(MAX_LABEL_VALUE_CHARS))
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, `at most ${MAX_LABELS} entries`);

/** The OCI pre-defined annotation keys Kiln sets on pushed images. */
export const OCI_ANNOTATIONS = {
  created: "org.opencontainers.image.created",
  source: "org.opencontainers.image.source",
  revision: "org.opencontainers.image.revision",
  /** Kiln's own: the build that pushed the image. */
  buildId: "build.kiln.id",
} as const;

/** The push options of `POST /v1/images` (spread into its body schema). */
export const PushRequestFields = {
  /** Copy the finished image to these registries (each with its login secret). */
  push: z.array(PushTargetSchema).min(1).max(MAX_PUSH_TARGETS).optional(),
  /** Labels set in the pushed images' config (needs `push`). */
  labels: LabelMapSchema.optional(),
  /** Annotations set on the pushed manifests, beside Kiln's `org.opencontainers.image.*` ones (needs `push`). */
  annotations: LabelMapSchema.optional(),
  /** `org.opencontainers.image.source` of pushed images: the source repository URL. */
  source: z.string().min(1).max(1024).optional(),
  /** `org.opencontainers.image.revision` of pushed images: the source revision (a commit id). */
  revision: z.string().min(1).max(256).optional(),
};

/**
 * Refuses the push-only fields of `PushRequestFields` without `push` (a zod `superRefine` step):
 * labels and annotations change only the pushed copies, so without a push they would be dropped silently.
 */
export function refusePushFieldsWithoutPush(
  body: { push?: unknown; labels?: unknown; annotations?: unknown; source?: unknown; revision?: unknown },
  ctx: z.RefinementCtx,
): void {
  for (const field of ["labels", "annotations", "source", "revision"] as const) {
    if (body[field] !== undefined && !body.push)
      ctx.addIssue({ code: "custom", path: [field], message: `\`${field}\` applies to pushed images only; add \`push\` targets` });
  }
}

/**
 * The annotations a pushed manifest carries: the submission's own, then Kiln's
 * `org.opencontainers.image.*` ones (created, source and revision when given) and the build id,
 * which win over a submitted key of the same name.
 */
export function pushAnnotations(input: {
  annotations?: Record<string, string> | undefined;
  createdIso: string;
  source?: string | undefined;
  revision?: string | undefined;
  buildId: string;
}): Record<string, string> {
  return {
    ...input.annotations,
    [OCI_ANNOTATIONS.created]: input.createdIso,
    ...(input.source ? { [OCI_ANNOTATIONS.source]: input.source } : {}),
    ...(input.revision ? { [OCI_ANNOTATIONS.revision]: input.revision } : {}),
    [OCI_ANNOTATIONS.buildId]: input.buildId,
  };
}

/** The push part of a runner job: copy `source` (null: the job's last layer, once built) to every target. */
export const JobPushSchema = z
  .object({
    /** The built-in registry's reference of the image, pinned by digest; null when the job builds it. */
    source: z.string().min(1).nullable(),
    targets: z.array(PushTargetSchema).min(1).max(MAX_PUSH_TARGETS),
    /** Set in each pushed image's config (`config.Labels`). */
    labels: z.record(z.string(), z.string()),
    /** Set on each pushed manifest (and index). */
    annotations: z.record(z.string(), z.string()),
  })
  .strict();

/** The push part of a job. */
export type JobPush = z.infer<typeof JobPushSchema>;

/** How one target's push ended, as the runner's `push_result` event reports it. */
export const PushResultFields = {
  /** The target, exactly as the job named it. */
  reference: z.string().min(1).max(MAX_PUSH_REFERENCE_CHARS),
  status: z.enum(["succeeded", "failed"]),
  /** The pushed manifest's (or index's) digest, read back from the target: null on failure. */
  digest: Sha256Digest.nullable(),
  /** The registry's message on failure (secrets masked); null on success. */
  message: z.string().max(4096).nullable(),
};

/** One target's push as the API shows it: `pending` until the runner reports it. */
export const PushViewSchema = z.object({
  reference: z.string(),
  status: z.enum(["pending", "succeeded", "failed"]),
  digest: z.string().nullable(),
  message: z.string().nullable(),
  /** The target's signed SBOM and provenance (decision 0024): absent or null until the runner reports them. */
  attestations: PushAttestationsStatusSchema.nullable().optional(),
});

/** One target's push as the API shows it. */
export type PushView = z.infer<typeof PushViewSchema>;
