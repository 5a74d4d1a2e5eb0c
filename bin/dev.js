#!/usr/bin/env node
// The fishchat CLI from the TypeScript sources, no build needed: tsx compiles
// cli/commands/*.ts and runtime/ on the fly. Usage: ./bin/dev.js <command> …
import { execute, settings } from '@oclif/core';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const root = fileURLToPath(new URL('..', import.meta.url));
const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// Point oclif at the sources directly. (Its own dist→source mapping assumes a
// src/ → lib/ layout and warns on ours, where rootDir is the package root.)
pjson.oclif.commands = './cli/commands';
settings.enableAutoTranspile = false;

await execute({ loadOptions: { root, pjson } });
