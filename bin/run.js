#!/usr/bin/env node
// Entry point of the imgdump CLI: oclif finds the commands through package.json.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
