/**
 * Kiln tags in the built-in registry (docs/registry.md, "Tags"): the Kiln tag `NAME:TAG` of
 * workspace `ws` is the OCI tag `TAG` of repository `ws/NAME`, pointing at the image's top-layer
 * manifest, linked there by reference from `ws/layers`. Published when the tag is written and
 * the image has succeeded, else when its build records the top layer (`publishBuiltTags`);
 * removed with the Kiln tag. Single-word tags of the old grammar are not published.
 */
import { LAYERS_REPOSITORY_PATH, ociTagOf } from "@kiln-build/protocol";
import { and, asc, eq, inArray, like } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { imageIndexes } from "../db/schema/image-indexes.ts";
import { images } from "../db/schema/images.ts";
import { tags } from "../db/schema/tags.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { linkTaggedManifest, unlinkTag } from "../registry/link.ts";
import { linkTaggedIndex } from "../registry/link-index.ts";
import { db, repository, setVisibility } from "../registry/store.ts";
import { loadImageView } from "./store.ts";

/** The registry repository and tag a Kiln tag is published as, or null (an old single-word tag). */
export function ociTarget(workspaceName: string, name: string): { repository: string; tag: string } | null {
  const oci = ociTagOf(name);
  return oci ? { repository: `${workspaceName}/${oci.path}`, tag: oci.tag } : null;
}

/** The pull reference of a Kiln tag, `<host>/<workspace>/NAME:TAG`, or null when it is not published. */
export function ociReference(origin: string, workspaceName: string, name: string): string | null {
  const target = ociTarget(workspaceName, name);
  return target ? `${new URL(origin).host}/${target.repository}:${target.tag}` : null;
}

/** Whether the repository a Kiln tag is published in is public (a tag moved there republishes). */
export async function ociRepositoryPublic(env: Env, workspaceName: string, name: string): Promise<boolean> {
  const target = ociTarget(workspaceName, name);
  return target ? ((await repository(db(env), target.repository))?.public ?? false) : false;
}

/** The repository a layer's reference (`<host>/<ws>/layers@sha256:...` or `...:<tag>`) names. */
function repositoryOf(reference: string): string {
  const path = reference.slice(reference.indexOf("/") + 1).split("@")[0]!;
  const colon = path.lastIndexOf(":");
  return colon > path.lastIndexOf("/") ? path.slice(0, colon) : path;
}

/** A built top layer: its manifest digest and reference. */
type TopLayer = { digest: string; reference: string };

async function link(env: Env, workspaceId: string, workspaceName: string, name: string, top: TopLayer): Promise<void> {
  const target = ociTarget(workspaceName, name);
  // Only from the workspace's own layers repository of this registry: a layer pushed elsewhere
  // (an external registry) is not here to link, and a path naming another workspace never is.
  const from = repositoryOf(top.reference);
  if (!target || from !== `${workspaceName}/${LAYERS_REPOSITORY_PATH}`) return;
  await linkTaggedManifest(env, {
    from,
    to: target.repository,
    workspaceId,
    digest: top.digest,
    tag: target.tag,
    nowMs: Date.now(),
  });
}

/**
 * Publishes Kiln tag `name` (just written to point at `imageId`) if the image has succeeded.
 * An image still building is published by its build (`publishBuiltTags`); until then the OCI
 * tag keeps its previous digest.
 */
export async function publishTag(env: Env, workspaceId: string, workspaceName: string, name: string, imageId: string): Promise<void> {
  if (!ociTagOf(name)) return;
  if (isIndexId(imageId)) {
    const row = await drizzle(env.DB)
      .select({ digest: imageIndexes.digest })
      .from(imageIndexes)
      .where(and(eq(imageIndexes.id, imageId), eq(imageIndexes.workspaceId, workspaceId)))
      .get();
    if (row?.digest) await linkIndex(env, workspaceId, workspaceName, name, row.digest);
    return;
  }
  const view = await loadImageView(env.DB, workspaceId, imageId);
  const top = view?.status === "succeeded" ? view.layers.at(-1) : undefined;
  if (!top?.digest || !top.reference) return;
  await link(env, workspaceId, workspaceName, name, { digest: top.digest, reference: top.reference });
}

/** Whether a tag's target id names a multi-platform image (an image index, `ix-`) rather than an image (`im-`). */
export function isIndexId(id: string): boolean {
  return id.startsWith("ix-");
}

// An index lives in the workspace's layers repository next to its platforms' manifests.
async function linkIndex(env: Env, workspaceId: string, workspaceName: string, name: string, digest: string): Promise<void> {
  const target = ociTarget(workspaceName, name);
  if (!target) return;
  const from = `${workspaceName}/${LAYERS_REPOSITORY_PATH}`;
  await linkTaggedIndex(env, { from, to: target.repository, workspaceId, digest, tag: target.tag, nowMs: Date.now() });
}

/** Whether `id` is an image or an image index of the workspace (what a tag may point at). */
export async function tagTargetExists(env: Env, workspaceId: string, id: string): Promise<boolean> {
  const d = drizzle(env.DB);
  const row = isIndexId(id)
    ? await d
        .select({ id: imageIndexes.id })
        .from(imageIndexes)
        .where(and(eq(imageIndexes.id, id), eq(imageIndexes.workspaceId, workspaceId)))
        .get()
    : await d
        .select({ id: images.id })
        .from(images)
        .where(and(eq(images.id, id), eq(images.workspaceId, workspaceId)))
        .get();
  return row !== undefined;
}

/** Called once index `indexId` is assembled (its digest recorded): publishes every Kiln tag pointing at it. */
export async function publishIndexTags(env: Env, workspaceId: string, indexId: string, digest: string): Promise<void> {
  const named = await drizzle(env.DB)
    .select({ name: tags.name })
    .from(tags)
    .where(and(eq(tags.workspaceId, workspaceId), eq(tags.imageId, indexId)))
    .all();
  if (named.length === 0) return;
  const workspaceName = await workspaceNameById(env, workspaceId);
  for (const { name } of named) await linkIndex(env, workspaceId, workspaceName, name, digest);
}

/** Removes the OCI tag of Kiln tag `name`; its manifests stay pullable by digest. */
export async function unpublishTag(env: Env, workspaceName: string, name: string): Promise<void> {
  const target = ociTarget(workspaceName, name);
  if (target) await unlinkTag(db(env), target.repository, target.tag);
}

/**
 * Called when build `buildId` records its top layer: publishes every Kiln tag pointing at an
 * image of that build (images submitted while it ran share it).
 */
export async function publishBuiltTags(env: Env, workspaceId: string, buildId: string, top: TopLayer): Promise<void> {
  const d = drizzle(env.DB);
  const [named, ws] = await d.batch([
    d
      .select({ name: tags.name })
      .from(tags)
      .where(
        and(
          eq(tags.workspaceId, workspaceId),
          inArray(
            tags.imageId,
            d
              .select({ id: images.id })
              .from(images)
              .where(and(eq(images.workspaceId, workspaceId), eq(images.buildId, buildId))),
          ),
        ),
      ),
    d.select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, workspaceId)),
  ]);
  const workspaceName = ws[0]?.name;
  if (!workspaceName) return;
  for (const { name } of named) await link(env, workspaceId, workspaceName, name, top);
}

/** The name of workspace `workspaceId` (empty when it does not exist). */
export async function workspaceNameById(env: Env, workspaceId: string): Promise<string> {
  return (await drizzle(env.DB).select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, workspaceId)).get())?.name ?? "";
}

/**
 * After Kiln tag `name` was made public or private (`PUT /v1/tags` with `public`, which needs
 * `images:write`): its repository follows. Public when the tag is; private when it is not and no
 * other Kiln tag of the same repository is public.
 */
export async function syncRepositoryVisibility(env: Env, workspaceId: string, workspaceName: string, name: string, isPublic: boolean) {
  const oci = ociTagOf(name);
  if (!oci) return;
  const repo = `${workspaceName}/${oci.path}`;
  if (!isPublic) {
    const siblings = await drizzle(env.DB)
      .select({ name: tags.name })
      .from(tags)
      .where(and(eq(tags.workspaceId, workspaceId), eq(tags.public, true), like(tags.name, `${oci.path}:%`)))
      .all();
    if (siblings.some((s) => s.name !== name && ociTagOf(s.name)?.path === oci.path)) return;
  }
  await setVisibility(db(env), repo, workspaceId, isPublic);
}

/** The tags of the workspace pointing at `imageId`, by name, with their OCI references. */
export async function imageTags(env: Env, origin: string, workspaceId: string, imageId: string) {
  const rows = await drizzle(env.DB)
    .select({ name: tags.name, workspaceName: workspaces.name })
    .from(tags)
    .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
    .where(and(eq(tags.workspaceId, workspaceId), eq(tags.imageId, imageId)))
    .orderBy(asc(tags.name))
    .limit(100)
    .all();
  return rows.map((r) => ({ name: r.name, reference: ociReference(origin, r.workspaceName, r.name) }));
}
