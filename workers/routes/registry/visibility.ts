/**
 * `PUT /v1/registry/repositories`: marks a repository of the caller's workspace public (pulls
 * without credentials) or private again. Part of the Kiln API (bearer token, `images:write`).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../app-env.ts";
import { authenticate, requireScope } from "../../auth/middleware.ts";
import { notFound } from "../../errors.ts";
import { isRepositoryName, workspaceNameOf } from "../../registry/reference.ts";
import { db, setVisibility, workspaceIdByName } from "../../registry/store.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, registerBearerScheme } from "../common.ts";

/** The registry's part of the `/v1` API. */
export const registryVisibilityApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(registryVisibilityApp);

const Visibility = z
  .object({
    repository: z
      .string()
      .refine(isRepositoryName, "a repository name `<workspace>/<path>` in the OCI grammar")
      .openapi({ example: "acme/app" }),
    public: z.boolean(),
  })
  .strict()
  .openapi("RegistryRepositoryVisibility");

registryVisibilityApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/registry/repositories",
    operationId: "setRepositoryVisibility",
    tags: ["registry"],
    summary: "Make a registry repository public or private",
    description: "Public repositories of the built-in registry answer pulls without credentials; pushes always need a token.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write"), jsonBodyLimit(4096)],
    request: { body: { required: true, content: { "application/json": { schema: Visibility } } } },
    responses: {
      200: { description: "Stored.", content: { "application/json": { schema: Visibility } } },
      ...errorResponses(400, 401, 403, 404),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const auth = c.get("auth");
    const owner = await workspaceIdByName(db(c.env), workspaceNameOf(body.repository));
    // Another workspace's namespace answers like a missing one.
    if (!owner || (auth.workspaceId !== null && auth.workspaceId !== owner))
      throw notFound(`Workspace '${workspaceNameOf(body.repository)}'`);
    await setVisibility(db(c.env), body.repository, owner, body.public);
    return c.json(body, 200);
  },
);
