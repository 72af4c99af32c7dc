#!/usr/bin/env node
// The `kiln` command. Node >= 22 runs this TypeScript file directly (type stripping).
import { main } from "../src/cli/main.ts";

process.exitCode = await main(process.argv);
