/**
 * Build libimgdump and the bundled Lisp on first use (`npm install` builds the library;
 * the Lisp is built here so a fresh clone or a global install needs only a C compiler).
 */
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {ImgdumpError} from '../errors.js'
import {PACKAGE_ROOT} from './package-root.js'

export const LISP_DIR = join(PACKAGE_ROOT, 'fixtures/lisp')

function make(args: string[], what: string): void {
  const r = spawnSync('make', ['-s', ...args], {encoding: 'utf8'})
  if (r.error || r.status !== 0) {
    const detail = (r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join('; ')
    throw new ImgdumpError('io', 'BUILD_FAILED', `building ${what} failed: ${detail}`, {
      hint: 'the demo needs `make` and a C compiler (cc)',
    })
  }
}

/** Returns the path of the Lisp binary, building what is missing or stale. */
export function buildLisp(buildDir = join(LISP_DIR, 'build')): string {
  if (!existsSync(join(LISP_DIR, 'Makefile'))) {
    throw new ImgdumpError('io', 'DEMO_MISSING', `the bundled Lisp is not installed at ${LISP_DIR}`)
  }
  make(['-C', join(PACKAGE_ROOT, 'native')], 'libimgdump')
  make(['-C', LISP_DIR, `BUILD=${buildDir}`], 'the bundled Lisp')
  return join(buildDir, 'lisp')
}
