/** The installed package's root directory (where native/ and fixtures/ live). */
import {accessSync, constants} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

// This file is dist/demo/package-root.js (or src/demo/package-root.ts under tsx): two up.
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI_ENTRY = resolve(PACKAGE_ROOT, 'bin/run.js')

/**
 * `dir/sub` when `dir` is writable (a checkout), else a per-user directory under the temp dir
 * named `tmpName` (a global install owned by root).
 */
export function writableDirOr(dir: string, sub: string, tmpName: string): string {
  try {
    accessSync(dir, constants.W_OK)
    return join(dir, sub)
  } catch {
    return join(tmpdir(), `${tmpName}-${process.getuid?.() ?? 0}`)
  }
}
