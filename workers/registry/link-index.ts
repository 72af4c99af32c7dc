/**
 * Publishing an image index under a tag of another repository of the same workspace (a Kiln
 * tag of a multi-platform image, decision 0023): every child manifest the index names is linked
 * first (row, references, blob links), then the index itself and the tag, all in one batch, so
 * the tag never resolves to an index whose platforms the repository does not hold.
 */
import { and, eq } from "drizzle-orm";
import { registryManifestRefs } from "../db/schema/registry.ts";
import { linkStatements, type ManifestLink } from "./link.ts";
import { db, findManifest } from "./store.ts";

/** Links index `link.digest` of `from` and its child manifests into `to` and points `to:tag` at it; false when `from` lacks any of them. */
export async function linkTaggedIndex(env: Env, link: ManifestLink): Promise<boolean> {
  const d = db(env);
  if (!(await findManifest(d, link.from, link.digest))) return false;
  const children = await d
    .select({ child: registryManifestRefs.child })
    .from(registryManifestRefs)
    .where(
      and(
        eq(registryManifestRefs.repository, link.from),
        eq(registryManifestRefs.manifest, link.digest),
        eq(registryManifestRefs.kind, "manifest"),
      ),
    )
    .all();
  for (const { child } of children) if (!(await findManifest(d, link.from, child))) return false;
  await env.DB.batch([
    ...children.flatMap(({ child }) => linkStatements(env, { ...link, digest: child }, false)),
    ...linkStatements(env, link, true),
  ]);
  return true;
}
