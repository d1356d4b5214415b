/**
 * Compiler and linker flags for programs that use libimgdump (`imgdump config`), and the
 * pkg-config file carrying the same. Static by default: the whole archive is linked
 * (`--whole-archive`) because an archive member is only pulled in for a symbol that is
 * still undefined, and a program that never names malloc would otherwise keep glibc's
 * (the replacement must win — glibc manual, "Replacing malloc").
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ImgdumpError} from '../errors.js'

/** native/ of this package (same relative path from src/config and dist/config). */
export const NATIVE_DIR = fileURLToPath(new URL('../../native', import.meta.url))

export interface LinkFlags {
  cflags: string[]
  libs: string[]
  /** The library file the flags link. */
  library: string
}

const SYSTEM_LIBS = ['-ldl', '-lpthread']

export function linkFlags(shared: boolean, nativeDir: string = NATIVE_DIR): LinkFlags {
  const include = join(nativeDir, 'include')
  const build = join(nativeDir, 'build')
  const library = join(build, shared ? 'libimgdump.so' : 'libimgdump.a')
  if (!existsSync(library)) {
    throw new ImgdumpError('io', 'LIBRARY_MISSING', `${library} does not exist`, {
      hint: `build it with: make -C ${nativeDir}`,
    })
  }
  const libs = shared
    // --no-as-needed: keep the library even when the program names none of its symbols,
    // so its malloc interposes libc's (it precedes libc in the lookup scope).
    ? [`-L${build}`, `-Wl,-rpath,${build}`, '-Wl,--no-as-needed', '-limgdump', '-Wl,--as-needed', ...SYSTEM_LIBS]
    : ['-Wl,--whole-archive', library, '-Wl,--no-whole-archive', ...SYSTEM_LIBS]
  return {cflags: [`-I${include}`], libs, library}
}

/** The pkg-config file (imgdump.pc) for the static or shared flags. */
export function pkgConfig(version: string, shared: boolean, nativeDir: string = NATIVE_DIR): string {
  const libs = shared
    ? '-L${libdir} -Wl,-rpath,${libdir} -Wl,--no-as-needed -limgdump -Wl,--as-needed'
    : '-Wl,--whole-archive ${libdir}/libimgdump.a -Wl,--no-whole-archive'
  return [
    `prefix=${nativeDir}`,
    'includedir=${prefix}/include',
    'libdir=${prefix}/build',
    '',
    'Name: imgdump',
    'Description: libimgdump: a fixed-address heap and unexec images for language runtimes',
    `Version: ${version}`,
    'Cflags: -I${includedir}',
    `Libs: ${libs} ${SYSTEM_LIBS.join(' ')}`,
    '',
  ].join('\n')
}

/** Quote a flag for a POSIX shell when it needs it (paths with spaces). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-+=.,/:@${}]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}
