/** Shared helpers of the test/alloc suites: build the library and the C tests in a temp dir. */
import assert from 'node:assert/strict'
import {spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {join} from 'node:path'

export const ROOT = join(import.meta.dirname, '../..')
export const NATIVE = join(ROOT, 'native')
export const SO = join(NATIVE, 'build/libimgdump.so')
export const DEFAULT_BASE = 0x600000000000n
export const DEFAULT_RESERVE = 64n << 30n

export function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {encoding: 'utf8', env: {...process.env, ...env}, input, maxBuffer: 256 << 20, timeout: 110000})
}

export function buildNative(testDir?: string): void {
  const args = ['-s', '-C', NATIVE, ...(testDir ? ['tests', `TESTDIR=${testDir}`] : [])]
  const r = run('make', args)
  assert.equal(r.status, 0, `make ${args.join(' ')}: ${r.stderr}`)
}

export interface ExitReport {
  base: bigint
  brk: bigint
  mallocs: number
}

/** The IMGDUMP_DEBUG exit line of the process (the last one if several processes wrote). */
export function exitReport(stderr: string): ExitReport | undefined {
  const lines = stderr.split('\n').filter((l) => l.startsWith('imgdump: exit '))
  const last = lines.at(-1)
  if (!last) return undefined
  const field = (name: string) => /\S+/.exec(last.split(` ${name}=`)[1] ?? '')?.[0] ?? '0'
  return {base: BigInt(field('base')), brk: BigInt(field('brk')), mallocs: Number(field('mallocs'))}
}
