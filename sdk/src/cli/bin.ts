#!/usr/bin/env node
// The `kiln` command: the installed package runs the compiled copy of this file.
import { main } from "./main.ts";

process.exitCode = await main(process.argv);
