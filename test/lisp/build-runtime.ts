/**
 * Builds the bundled Lisp (fixtures/lisp) and the Jim Tcl host (fixtures/jim) into a temp
 * directory for the tests. Links the real libimgdump when its archive provides
 * imgdump_save, the stand-in (fixtures/lisp/imgdump-standin.c) otherwise.
 */
import {execFileSync, spawn, spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export const REPO = resolve(import.meta.dirname, '../..')
export const LIB_ARCHIVE = join(REPO, 'native/build/libimgdump.a')

/** True when native/build/libimgdump.a defines imgdump_save (the real library is ready). */
export function realLibraryReady(): boolean {
  const r = spawnSync('nm', [LIB_ARCHIVE], {encoding: 'utf8'})
  return r.status === 0 && / T imgdump_save$/m.test(r.stdout)
}

export interface Built {
  dir: string
  exe: string
  standin: boolean
  cleanup(): void
}

/** `make -C fixtures/<name> BUILD=<tmp> [STANDIN=1]`; returns the binary's path. */
export function buildFixture(name: 'lisp' | 'jim', binary: string): Built {
  const dir = mkdtempSync(join(tmpdir(), `imgdump-${name}-`))
  const standin = !realLibraryReady()
  const args = ['-s', '-C', join(REPO, 'fixtures', name), `BUILD=${dir}`]
  if (standin) args.push('STANDIN=1')
  execFileSync('make', args, {stdio: ['ignore', 'pipe', 'pipe']})
  return {dir, exe: join(dir, binary), standin, cleanup: () => rmSync(dir, {recursive: true, force: true})}
}

export interface Run {
  status: number | null
  stdout: string
  stderr: string
}

export function run(exe: string, args: string[], opts: {input?: string; cwd?: string; env?: NodeJS.ProcessEnv; shell?: string} = {}): Run {
  let r: SpawnSyncReturns<string>
  if (opts.shell) {
    // e.g. a stack limit: sh -c 'ulimit -s 256; exec "$0" "$@"' exe args...
    r = spawnSync('sh', ['-c', `${opts.shell}; exec "$0" "$@"`, exe, ...args],
      {encoding: 'utf8', input: opts.input ?? '', cwd: opts.cwd, env: opts.env, maxBuffer: 64 << 20})
  } else {
    r = spawnSync(exe, args, {encoding: 'utf8', input: opts.input ?? '', cwd: opts.cwd, env: opts.env, maxBuffer: 64 << 20})
  }
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

/**
 * Run `exe args` under `imgdump run --name NAME`, then save it from outside with
 * `imgdump save NAME -o image --exit` (retried while the session is not registered yet, exit
 * 9). Returns the save command's result and the session's exit status.
 */
export async function saveFromOutside(exe: string, args: string[], name: string, image: string, env: NodeJS.ProcessEnv):
  Promise<{saved: Run; exitStatus: number | null; stderr: string}> {
  const cli = join(REPO, 'bin/run.js')
  const child = spawn(cli, ['run', '--name', name, '--', exe, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  try {
    let saved = run(cli, ['save', name, '-o', image, '--exit'], {env})
    for (let i = 0; i < 100 && saved.status === 9; i++) {
      await new Promise((r) => setTimeout(r, 100))
      saved = run(cli, ['save', name, '-o', image, '--exit'], {env})
    }
    return {saved, exitStatus: saved.status === 0 ? await exited : null, stderr}
  } finally {
    child.kill('SIGKILL')
  }
}
