#!/usr/bin/env node
// The fishchat CLI: oclif runs the compiled commands in dist/cli/commands (`npm run build`).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
