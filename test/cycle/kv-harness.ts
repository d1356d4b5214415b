/**
 * Harness for the end-to-end tests of the unexec cycle: builds libimgdump and the kv test
 * runtime (fixtures/kv) into a temp dir, and runs a runtime or an image with commands on
 * stdin. The planner is this checkout's CLI (IMGDUMP_CLI=bin/run.js), built by `pretest`.
 */
import {execFileSync, spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export const REPO = resolve(import.meta.dirname, '../..')
export const CLI = join(REPO, 'bin/run.js')
export const VARIANTS = ['kv-nopie', 'kv-pie', 'kv-nopie-now', 'kv-pie-now'] as const

export function buildNative(): void {
  execFileSync('make', ['-s', '-C', join(REPO, 'native')], {stdio: 'pipe'})
}

/** Build the kv fixtures into `out` (a fresh temp dir unless given). */
export function buildKv(out = mkdtempSync(join(tmpdir(), 'imgdump-kv-')), kvxVersion = '1'): string {
  buildNative()
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures/kv'), `OUT=${out}`, `KVX_VERSION=${kvxVersion}`], {stdio: 'pipe'})
  return out
}

/** Rebuild only the kv library (another build-id) in place. */
export function rebuildKvx(out: string, version: string): void {
  rmSync(join(out, 'libkvx.so'), {force: true})
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures/kv'), `OUT=${out}`, `KVX_VERSION=${version}`, `${out}/libkvx.so`], {stdio: 'pipe'})
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  /** Run through a shell prefix, e.g. `ulimit -s unlimited;`. */
  shellPrefix?: string
  timeoutMs?: number
  argv0?: string[]
}

/** Run `program` with one command per line on stdin. */
export function runKv(program: string, commands: string[], opts: RunOptions = {}): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, ...opts.env}
  delete env.IMGDUMP_CONTROL_FD
  const input = commands.join('\n') + '\n'
  const timeout = opts.timeoutMs ?? 60_000 // a hang guard, not a speed assertion
  if (opts.shellPrefix) {
    return spawnSync('bash', ['-c', `${opts.shellPrefix} exec "$0"`, program], {input, env, encoding: 'utf8', timeout})
  }
  const [cmd, ...pre] = opts.argv0 ?? [program]
  return spawnSync(cmd, pre.length ? [...pre] : [], {input, env, encoding: 'utf8', timeout})
}

/** The last `dump` line of an output (the state summary), without the generation. */
export function stateLine(stdout: string): string {
  const line = stdout.split('\n').filter((l) => l.startsWith('count=')).pop()
  if (!line) throw new Error(`no dump line in output:\n${stdout}`)
  return line.replace(/ gen=\d+$/, '')
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix))
}
