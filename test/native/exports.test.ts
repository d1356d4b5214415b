/**
 * libimgdump shows a runtime only its public API (include/imgdump.h) and the malloc family it
 * replaces; every internal name carries the library's prefix `imgdump__`. Checked on the
 * symbol tables of both libraries (nm), and by linking a program that defines names the
 * library once used internally (`json_parse`, `control_fd`, …): it must link and run.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')
const NATIVE = join(REPO, 'native')
const MALLOC_FAMILY = ['malloc', 'free', 'calloc', 'realloc', 'reallocarray', 'aligned_alloc', 'posix_memalign', 'memalign',
  'valloc', 'pvalloc', 'malloc_usable_size', 'free_sized', 'free_aligned_sized', 'mallinfo', 'mallinfo2', 'malloc_stats',
  'malloc_trim', 'mallopt']

function publicApi(): string[] {
  const header = readFileSync(join(NATIVE, 'include/imgdump.h'), 'utf8')
  return [...new Set([...header.matchAll(/\b(imgdump_[a-z][a-z_]*)\s*\(/g)].map((m) => m[1]))]
}

/** Defined global symbols: nm's "T name" rows (-D: the dynamic table; -g: an archive's members). */
function defined(args: string[]): string[] {
  const out = execFileSync('nm', args, {encoding: 'utf8'})
  return [...new Set(out.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 3 && f[1] !== 'U' && f[1] !== 'w')
    .map((f) => f[2]))]
}

function unexpected(names: string[]): string[] {
  return names.filter((n) => !n.startsWith('imgdump_') && !MALLOC_FAMILY.includes(n))
}

describe('libimgdump exports only its API, the malloc family and prefixed internals', () => {
  before(() => execFileSync('make', ['-s', '-C', NATIVE], {stdio: 'pipe'}))

  it('libimgdump.so: the dynamic symbol table', () => {
    const names = defined(['-D', '--defined-only', join(NATIVE, 'build/libimgdump.so')])
    assert.deepEqual(unexpected(names), [])
    for (const f of [...publicApi(), ...MALLOC_FAMILY]) assert.ok(names.includes(f), `${f} is not exported`)
  })

  it('libimgdump.a: every global symbol of every member', () => {
    const names = defined(['-g', '--defined-only', join(NATIVE, 'build/libimgdump.a')])
    assert.deepEqual(unexpected(names), [])
    for (const f of publicApi()) assert.ok(names.includes(f), `${f} is not defined`)
  })

  it('a runtime defining the names libimgdump once used internally links with the whole archive and saves nothing wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgdump-exports-'))
    try {
      const clashing = ['json_parse', 'json_get', 'control_fd', 'planner_open', 'scratch_alloc', 'read_proc_file',
        'for_each_library', 'build_id_hex', 'dirty_begin', 'own_image', 'manifest_decode', 'pin_probe']
      const src = [
        '#include <stdio.h>', '#include <stdlib.h>', '#include "imgdump.h"',
        ...clashing.map((n) => `int ${n}(void) { return 7; }`),
        'int main(void) { char *p = malloc(64); int s = 0;',
        ...clashing.map((n) => `  s += ${n}();`),
        '  printf("%d %d\\n", s, imgdump_restored()); free(p); return 0; }',
      ].join('\n')
      writeFileSync(join(dir, 'rt.c'), src)
      execFileSync('cc', ['-o', join(dir, 'rt'), join(dir, 'rt.c'), `-I${join(NATIVE, 'include')}`,
        '-Wl,--whole-archive', join(NATIVE, 'build/libimgdump.a'), '-Wl,--no-whole-archive', '-ldl', '-lpthread'], {stdio: 'pipe'})
      const r = spawnSync(join(dir, 'rt'), {encoding: 'utf8'})
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, `${7 * clashing.length} 0\n`)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
