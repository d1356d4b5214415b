/**
 * `imgdump demo`: the main job on the bundled Lisp. Load a non-trivial program
 * (examples/world.lisp: ~3,000 generated definitions) and build a world of records of
 * more than 100 MB; time that cold start; save an image; time the restore; ask the restored
 * process the same questions; change something and save generation 2 with 'exec.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, statSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {ImgdumpError} from '../errors.js'
import {buildLisp, LISP_DIR} from './build-lisp.js'
import {CLI_ENTRY} from './package-root.js'

export interface DemoOptions {
  dir: string
  records: number
  restoreRuns: number
  progress: (message: string) => void
}

export interface DemoResult {
  dir: string
  records: number
  heapBytes: number
  coldStartMs: number
  saveMs: number
  imageBytes: number
  saveMBps: number
  restoreMs: number
  speedup: number
  queries: {query: string; cold: string; restored: string; same: boolean}[]
  generation2: {saveMs: number; generation: number; changePresent: boolean; image: string}
  images: string[]
}

/** Deterministic questions asked of the cold world and of the restored one. */
function queriesFor(records: number): string[] {
  const id = (f: number) => Math.floor(records * f)
  return [
    '(world-summary)',
    `(city-by-name "city-${id(0.43)}")`,
    `(walk ${id(0.77)} 25)`,
    '(length (region-sizes))',
    '(rule-2999 12)',
  ]
}

interface LispRun {
  stdout: string
  ms: number
}

/**
 * `session`: run the Lisp under `imgdump run`, so its saves go to a planner that is already
 * up (a standalone save first starts the CLI: Node's start-up, ~0.2 s here).
 */
function runLisp(program: string, args: string[], what: string, session = false): LispRun {
  const t0 = process.hrtime.bigint()
  const [file, argv] = session ? [process.execPath, [CLI_ENTRY, 'run', '--', program, ...args]] : [program, args]
  const r = spawnSync(file, argv, {encoding: 'utf8', maxBuffer: 1 << 26, env: {...process.env, IMGDUMP_CLI: CLI_ENTRY}})
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.error || r.status !== 0) {
    const detail = (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join('; ')
    throw new ImgdumpError('save', 'DEMO_STEP_FAILED', `demo step "${what}" failed (exit ${r.status}): ${detail}`)
  }
  return {stdout: r.stdout, ms}
}

/** Each -p prints one line: the last `count` lines are the answers, in order. */
function answers(stdout: string, count: number): string[] {
  const lines = stdout.trimEnd().split('\n')
  return lines.slice(lines.length - count)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function heapBytesOf(stats: string): number {
  const m = /\(heap-bytes \. (\d+)\)/.exec(stats)
  return m ? Number(m[1]) : 0
}

export function runDemo(opts: DemoOptions): DemoResult {
  const dir = resolve(opts.dir)
  mkdirSync(dir, {recursive: true})
  const world = join(LISP_DIR, 'examples/world.lisp')
  const image1 = join(dir, 'world.img')
  const image2 = join(dir, 'world-2.img')
  rmSync(image1, {force: true})
  rmSync(image2, {force: true})

  opts.progress('building libimgdump and the bundled Lisp')
  const lisp = buildLisp()
  const build = ['-e', `(build-world ${opts.records})`]
  const QUERIES = queriesFor(opts.records)
  const queryArgs = QUERIES.flatMap((q) => ['-p', q])

  opts.progress(`cold start: loading world.lisp and building ${opts.records} records`)
  const cold = runLisp(lisp, [world, ...build, '-p', '(heap-stats)', ...queryArgs], 'cold start')
  const coldAnswers = answers(cold.stdout, QUERIES.length)
  const heapBytes = heapBytesOf(cold.stdout)
  const coldStartMs = runLisp(lisp, [world, ...build], 'cold start (timed)').ms

  opts.progress('saving the image (generation 1)')
  const saved = runLisp(lisp, [world, ...build, '-e', '(define *t0* (clock-ms))',
    '-e', `(save-image ${JSON.stringify(image1)} 'continue)`, '-p', '(- (clock-ms) *t0*)'], 'save', true)
  const saveMs = Number(answers(saved.stdout, 1)[0])
  const imageBytes = statSync(image1).size

  opts.progress('restoring: executing the image')
  const restoreTimes: number[] = []
  for (let i = 0; i < opts.restoreRuns; i++) restoreTimes.push(runLisp(image1, ['-p', '(image-generation)'], 'restore').ms)
  const restoreMs = median(restoreTimes)
  const restored = runLisp(image1, queryArgs, 'queries after restore')
  const restoredAnswers = answers(restored.stdout, QUERIES.length)
  const queries = QUERIES.map((query, i) => ({query, cold: coldAnswers[i], restored: restoredAnswers[i], same: coldAnswers[i] === restoredAnswers[i]}))

  opts.progress("changing the world and saving generation 2 with 'exec")
  const note = 'changed in generation 1, saved as generation 2'
  const exec = runLisp(image1, ['-e', `(define *note* ${JSON.stringify(note)})`, '-e', '(define *t0* (clock-ms))',
    '-e', `(save-image ${JSON.stringify(image2)} 'exec)`, '-p', '(- (clock-ms) *t0*)'], "save with 'exec", true)
  const g2 = runLisp(image2, ['-p', '(image-generation)', '-p', '*note*'], 'generation 2')
  const [gen, shown] = answers(g2.stdout, 2)
  return {
    dir, records: opts.records, heapBytes, coldStartMs, saveMs, imageBytes,
    saveMBps: imageBytes / 1e6 / (saveMs / 1e3), restoreMs, speedup: coldStartMs / restoreMs, queries,
    generation2: {saveMs: Number(answers(exec.stdout, 1)[0]), generation: Number(gen), changePresent: shown === JSON.stringify(note), image: image2},
    images: [image1, image2],
  }
}
