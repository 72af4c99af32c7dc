/**
 * What the multi-platform image page needs (index-page.ts renders it): which index a public
 * path names, and the index's view with its tags and pushes. A public page exists only for an
 * index a public tag points at; its platforms' image pages are then public too (pulling the
 * public tag serves their manifests anyway). Anything else takes the one 404 of the image pages.
 */
import type { ImageIndexView } from "@kiln-build/protocol";
import { and, asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { sessionPath } from "../auth/page-session.ts";
import { imageIndexes } from "../db/schema/image-indexes.ts";
import { tags } from "../db/schema/tags.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { indexNamesImage, loadImageIndexView } from "../images/image-index.ts";
import { isIndexId, ociReference } from "../images/oci-tags.ts";
import { renderIndexPage } from "./index-page.ts";

/** An index a page shows: its workspace, and the public tag it was found by (null: a session's page). */
export type IndexPageTarget = { indexId: string; workspaceId: string; workspace: string; tag: string | null };

/** The index `indexId` when a public tag points at it (the first such tag by name), else null. */
export async function publicIndexById(env: Env, indexId: string): Promise<IndexPageTarget | null> {
  if (!isIndexId(indexId)) return null;
  const row = await drizzle(env.DB)
    .select({ workspaceId: tags.workspaceId, workspace: workspaces.name, tag: tags.name })
    .from(tags)
    .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
    .where(and(eq(tags.imageId, indexId), eq(tags.public, true)))
    .orderBy(asc(tags.name))
    .get();
  return row ? { indexId, ...row } : null;
}

/** The index public tag `tag` of workspace `workspace` points at, else null. */
export async function publicIndexByTag(env: Env, workspace: string, tag: string): Promise<IndexPageTarget | null> {
  const row = await drizzle(env.DB)
    .select({ indexId: tags.imageId, workspaceId: tags.workspaceId })
    .from(tags)
    .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
    .where(and(eq(workspaces.name, workspace), eq(tags.name, tag), eq(tags.public, true)))
    .get();
  return row && isIndexId(row.indexId) ? { ...row, workspace, tag } : null;
}

/** The workspace of image `imageId` when it is a platform of an index a public tag points at, else null. */
export async function publicIndexOfImage(env: Env, imageId: string): Promise<{ workspaceId: string; workspace: string } | null> {
  const row = await drizzle(env.DB)
    .select({ workspaceId: imageIndexes.workspaceId, workspace: workspaces.name })
    .from(imageIndexes)
    .innerJoin(tags, and(eq(tags.imageId, imageIndexes.id), eq(tags.workspaceId, imageIndexes.workspaceId), eq(tags.public, true)))
    .innerJoin(workspaces, eq(workspaces.id, imageIndexes.workspaceId))
    .where(indexNamesImage(imageId))
    .get();
  return row ?? null;
}

/** The page's HTML and the index shown, or null when the index does not exist (any more). */
export async function indexPage(
  env: Env,
  target: IndexPageTarget,
  where: { origin: string; private: boolean },
): Promise<{ html: string; index: ImageIndexView } | null> {
  const index = await loadImageIndexView(env, target.workspaceId, target.indexId, where.origin);
  if (!index) return null;
  const base = where.private ? `${where.origin}${sessionPath(target.workspace)}/images/` : `${where.origin}/images/`;
  const html = renderIndexPage({
    index,
    title: target.tag ? `${target.workspace}/${target.tag}` : null,
    pullReference: target.tag ? ociReference(where.origin, target.workspace, target.tag) : null,
    platformPageUrl: (imageId) => `${base}${encodeURIComponent(imageId)}`,
    workspaceUrl: where.private ? `${where.origin}${sessionPath(target.workspace)}` : null,
  });
  return { html, index };
}
