#!/usr/bin/env node
// The `kiln` bin. It is committed (dist/ is built), so `npm ci` on a fresh clone links it even
// before the first `npm run build`; npm skips a bin whose file does not exist yet.
await import("../dist/cli/bin.js");
