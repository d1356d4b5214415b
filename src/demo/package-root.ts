/** The installed package's root directory (where native/ and fixtures/ live). */
import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

// This file is dist/demo/package-root.js (or src/demo/package-root.ts under tsx): two up.
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI_ENTRY = resolve(PACKAGE_ROOT, 'bin/run.js')
