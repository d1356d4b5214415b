/**
 * The ELF test corpus, built once per mocha process from fixtures/elf/ into a temp dir
 * (never into the repository) and removed at exit.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')

/** Executable kinds of the corpus (all run the probe program). */
export const EXECUTABLES = ['static', 'static-pie', 'dynamic', 'pie', 'pie-stripped', 'pie-nosections', 'static-nosections', 'static-pie-nosections'] as const
export const CORPUS = [...EXECUTABLES, 'libprobe.so', 'aarch64-static', 'aarch64-static-pie'] as const

let dir: string | undefined

export function corpusDir(): string {
  if (dir) return dir
  const d = mkdtempSync(join(tmpdir(), 'imgdump-elf-'))
  process.on('exit', () => rmSync(d, {recursive: true, force: true}))
  execFileSync(join(ROOT, 'fixtures/elf/build-corpus.sh'), [d], {stdio: ['ignore', 'ignore', 'pipe']})
  dir = d
  return d
}

export function corpusFile(name: string): string {
  return join(corpusDir(), name)
}

/** A scratch directory for one suite, removed at exit. */
export function scratchDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  process.on('exit', () => rmSync(d, {recursive: true, force: true}))
  return d
}

/** System binaries of the round-trip list: /bin/ls, node, and the ld.so and libc that ls uses. */
export function systemBinaries(): string[] {
  const out = ['/bin/ls', '/usr/bin/node']
  const ldd = spawnSync('ldd', ['/bin/ls'], {encoding: 'utf8'}).stdout ?? ''
  for (const line of ldd.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)
    if (m && (/\/ld-linux[^/]*\.so/.test(m[1]) || /\/libc\.so\.6$/.test(m[1]))) out.push(m[1])
  }
  return out.filter((p) => existsSync(p))
}

let built = false

function newestSource(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, {withFileTypes: true})) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs)
  }
  return newest
}

/**
 * Build dist/ and the oclif manifest once, so that ./bin/run.js sees the current commands.
 * Skipped when dist/ and the manifest are newer than every file of src/ (`npm test` has just
 * built them in `pretest`).
 */
export function buildCli(): void {
  if (built) return
  const inspect = join(ROOT, 'dist/commands/inspect.js')
  const manifest = join(ROOT, 'oclif.manifest.json')
  if (existsSync(inspect) && existsSync(manifest) &&
      Math.min(statSync(inspect).mtimeMs, statSync(manifest).mtimeMs) > newestSource(join(ROOT, 'src'))) {
    built = true
    return
  }
  // tsc exits non-zero for errors in files other helpers are editing; it still emits.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], {cwd: ROOT, stdio: 'ignore'})
  const m = spawnSync('npx', ['oclif', 'manifest'], {cwd: ROOT, encoding: 'utf8'})
  if (!existsSync(join(ROOT, 'dist/commands/inspect.js'))) throw new Error(`build failed: ${m.stderr}`)
  built = true
}

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
  signal: NodeJS.Signals | null
}

/** Run ./bin/run.js with a hang guard (a generous timeout, not a timing assertion). */
export function runCli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), ...args], {cwd: ROOT, encoding: 'utf8', timeout: 60_000})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal}
}

/** runCli for many argument lists at once, `parallel` processes at a time. */
export async function runCliMany(argLists: string[][], parallel = 4): Promise<CliResult[]> {
  const {spawn} = await import('node:child_process')
  const results: CliResult[] = new Array(argLists.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < argLists.length) {
      const i = next++
      results[i] = await new Promise<CliResult>((done) => {
        const child = spawn(process.execPath, [join(ROOT, 'bin/run.js'), ...argLists[i]], {cwd: ROOT, timeout: 60_000})
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => { stdout += d })
        child.stderr.on('data', (d) => { stderr += d })
        child.on('close', (status, signal) => done({status, signal, stdout, stderr}))
      })
    }
  }
  await Promise.all(Array.from({length: parallel}, worker))
  return results
}
