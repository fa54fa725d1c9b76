#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli/ (compiled to dist/).
import { handleInterrupts, main } from '../dist/src/cli/main.js';

handleInterrupts();
await main(process.argv);
