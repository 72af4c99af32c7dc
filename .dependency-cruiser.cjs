/**
 * Kiln's layers, checked in `npm run check` (docs/architecture.md draws them):
 *
 *   protocol/                       the wire contract: imports no other Kiln code, no Node APIs
 *   sdk/, runner/                   published packages: protocol only (by package name)
 *   workers/ (not routes/, index)   shared services: db, log, auth, fleets, secrets, registry...
 *   durable-objects/                build coordination: services and protocol
 *   workers/routes/                 HTTP shells: anything below; imported only by workers/index.ts
 *
 * A lower layer never imports a higher one, and there are no cycles.
 */
const SERVICES = "^workers/(?!routes/|index\\.ts$)";

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle makes two modules one; split out what both need.",
      from: {},
      to: { circular: true },
    },
    {
      name: "protocol-is-the-floor",
      severity: "error",
      comment: "protocol/ is imported by every part and imports none of them.",
      from: { path: "^protocol/" },
      to: { path: "^(sdk|runner|workers|durable-objects|scripts|bench)/" },
    },
    {
      name: "protocol-runs-on-workerd",
      severity: "error",
      comment: "protocol/src runs in workerd and Node: Web APIs only, no node: modules.",
      from: { path: "^protocol/src/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "sdk-stands-alone",
      severity: "error",
      comment: "The SDK is a package: it may import the protocol package and its own dependencies.",
      from: { path: "^sdk/src/" },
      to: { path: "^(runner|workers|durable-objects|scripts|bench)/" },
    },
    {
      name: "runner-stands-alone",
      severity: "error",
      comment: "The runner is a package: it may import the protocol package and its own dependencies.",
      from: { path: "^runner/src/" },
      to: { path: "^(sdk|workers|durable-objects|scripts|bench)/" },
    },
    {
      name: "packages-import-protocol-by-name",
      severity: "error",
      comment: "Relative paths into protocol/src would not exist in an installed package; import @kiln-build/protocol.",
      from: { path: "^(sdk|runner)/src/|^workers/|^durable-objects/" },
      to: { path: "^protocol/src/" },
    },
    {
      name: "services-below-objects-and-routes",
      severity: "error",
      comment: "Shared services sit below the Durable Objects and the routes.",
      from: { path: SERVICES },
      to: { path: "^durable-objects/|^workers/routes/|^workers/index\\.ts$" },
    },
    {
      name: "objects-below-routes",
      severity: "error",
      comment: "Durable Objects are called by routes, never the other way.",
      from: { path: "^durable-objects/" },
      to: { path: "^workers/routes/|^workers/index\\.ts$" },
    },
    {
      name: "routes-are-leaves",
      severity: "error",
      comment: "Only the app's entry (workers/index.ts) mounts route modules; move shared code to a service.",
      from: { pathNot: "^workers/routes/|^workers/index\\.ts$" },
      to: { path: "^workers/routes/" },
    },
    {
      name: "routes-do-not-import-routes",
      severity: "error",
      comment: "A route module is an HTTP shell; what two routes share belongs in routes/common.ts or a service.",
      from: { path: "^workers/routes/", pathNot: "^workers/routes/registry/index\\.ts$" },
      to: { path: "^workers/routes/", pathNot: "^workers/routes/common\\.ts$" },
    },
    {
      name: "no-product-imports-of-tools",
      severity: "error",
      comment: "scripts/ and bench/ are developer tools; product code never imports them.",
      from: { path: "^(protocol|sdk|runner)/src/|^workers/|^durable-objects/" },
      to: { path: "^(scripts|bench|test)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(dist|node_modules|test)/|\\.d\\.ts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "types", "default"] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
