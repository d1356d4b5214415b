/**
 * Build libimgdump and the bundled Lisp on first use (`npm install` builds the library;
 * the Lisp is built here so a fresh clone or a global install needs only a C compiler).
 */
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {ImgdumpError} from '../errors.js'
import {PACKAGE_ROOT, writableDirOr} from './package-root.js'

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
export function buildLisp(buildDir = writableDirOr(LISP_DIR, 'build', 'imgdump-lisp')): string {
  if (!existsSync(join(LISP_DIR, 'Makefile'))) {
    throw new ImgdumpError('io', 'DEMO_MISSING', `the bundled Lisp is not installed at ${LISP_DIR}`)
  }
  // The library is built at install time; rebuild only if it is missing (e.g. a checkout
  // whose `npm install` did not run its scripts) and the package is writable.
  if (!existsSync(join(PACKAGE_ROOT, 'native/build/libimgdump.a'))) make(['-C', join(PACKAGE_ROOT, 'native')], 'libimgdump')
  make(['-C', LISP_DIR, `BUILD=${buildDir}`], 'the bundled Lisp')
  return join(buildDir, 'lisp')
}
