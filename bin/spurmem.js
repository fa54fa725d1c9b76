#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli/ (compiled to dist/).
import { main } from '../dist/src/cli/main.js';

await main(process.argv);
