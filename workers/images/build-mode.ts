/**
 * How a submission uses the layer cache; the submission parses it from the request and the
 * LayerBuild objects' join policy acts on it.
 */

/** How a build treats the cache: `normal` reads and fills it (first writer wins), `force` rebuilds and replaces, `ignore` rebuilds and leaves it alone. */
export type BuildMode = "normal" | "force" | "ignore";
