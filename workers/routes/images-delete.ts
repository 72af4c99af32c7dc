/**
 * `DELETE /v1/images/{id}` (`image.delete()`, `kiln images rm`): removes the image record and
 * its tags (workers/images/delete.ts). Its layers stay while other images use them; the
 * registry GC reclaims the rest after its grace period (docs/decisions/0018-image-deletion-and-gc.md).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DeletedImageSchema as DeletedImage } from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { executionContextOf, invalidateImageCaches } from "../edge-cache.ts";
import { conflict, notFound } from "../errors.ts";
import { deleteImage, type ImageDeleteResult } from "../images/delete.ts";
import { deleteImageIndex } from "../images/index-delete.ts";
import { isIndexId, workspaceNameById } from "../images/oci-tags.ts";
import { bearerSecurity, errorResponses, registerBearerScheme } from "./common.ts";

/** The image delete sub-app, mounted at the root. */
export const imagesDeleteApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(imagesDeleteApp);

const DeletedImageSchema = DeletedImage.openapi("DeletedImage");

imagesDeleteApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/images/{id}",
    operationId: "deleteImage",
    tags: ["images"],
    summary: "Delete an image and its tags",
    description:
      "Removes the image record, the tags pointing at it and the OCI tags they published. Layers other images use stay; the registry GC reclaims the rest after its grace period. An image still building is refused (409 `image_building`): cancel its build first. Deleting it again answers 404. A multi-platform image's id (`ix-...`) deletes the index, its tags, its push records and each platform's image no other index names (`images` in the answer); refused the same way while a platform builds or its push runs.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write")] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(64)
          .openapi({
            param: { name: "id", in: "path" },
            example: "im-abc",
            description: "An image id (`im-...`) or a multi-platform image's (`ix-...`).",
          }),
      }),
    },
    responses: {
      200: { description: "Deleted.", content: { "application/json": { schema: DeletedImageSchema } } },
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const result = isIndexId(id) ? await deleteIndex(c.env, workspaceId, id) : withoutPlatforms(await deleteImage(c.env, workspaceId, id));
    if (!result.ok) {
      if (result.error.code === "not_found") throw notFound(`Image '${id}'`);
      const { buildId } = result.error;
      throw conflict(
        "image_building",
        `Image '${id}' is still building (build ${buildId}). Cancel the build first (\`kiln cancel ${buildId}\` or POST /v1/builds/${buildId}/cancel), or wait for it to end, then delete the image.`,
        { buildId },
      );
    }
    // Its status page and its tags' badges and pages may be cached at the edge; they must answer 404 now,
    // as must those of a multi-platform image's platform images deleted with it.
    const origin = new URL(c.req.url).origin;
    const gone = [{ imageId: id, tags: result.tags }, ...result.platforms];
    for (const { imageId, tags } of gone)
      await invalidateImageCaches(c.env, executionContextOf(c), { origin, workspace: result.workspaceName, imageId, tags });
    const images = isIndexId(id) ? { images: result.platforms.map((p) => p.imageId) } : {};
    return c.json({ id, deleted: true as const, tags: result.tags, ...images }, 200);
  },
);

// A multi-platform image: the index, its tags and the platform images only it names.
async function deleteIndex(env: Env, workspaceId: string, id: string) {
  const result = await deleteImageIndex(env, workspaceId, id);
  return result.ok ? { ...result, workspaceName: await workspaceNameById(env, workspaceId) } : result;
}

// A single image deletes no platform images.
function withoutPlatforms(result: ImageDeleteResult) {
  return result.ok ? { ...result, platforms: [] as { imageId: string; tags: string[] }[] } : result;
}
