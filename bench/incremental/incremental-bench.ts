/**
 * bench/incremental — incremental saves of the session loop (issue "session loop").
 *
 * A kv runtime with a SIZE MiB heap blob saves once (full: the previous image), then 0 / 0.1 /
 * 1 / 10 / 50 % of the blob's pages are dirtied, spread, and it saves again to the same path:
 * a full save (IMGDUMP_INCREMENTAL=0) against an incremental one (the default: clean pages
 * come from the previous image by copy_file_range, or reflink on XFS/btrfs). Baselines: a
 * plain write loop of the bytes the incremental save wrote, one of the image's size, and the
 * fsync of an empty file (the floor of any durable save). Save times are as the runtime sees
 * them (kv's `timed-save`, which includes spawning the planner CLI).
 * Restore: `echo 'exit 0' | ./image` of the final images against the plain runtime.
 * Env: BENCH_INC_MIB=1024 (heap MiB), BENCH_INC_ROUNDS=3, BENCH_INC_NOSYNC=1 adds a table with
 * IMGDUMP_SYNC=0 (no fsyncs; the write loops then skip theirs too), BENCH_INC_DIR the images' directory.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {performance} from 'node:perf_hooks'

const REPO = resolve(import.meta.dirname, '../..')
const CLI = join(REPO, 'bin/run.js')
// BENCH_INC_DIR: where images go (e.g. a loop-mounted XFS, where clean pages are reflinked).
const work = mkdtempSync(join(process.env.BENCH_INC_DIR ?? tmpdir(), 'imgdump-bench-inc-'))
const MIB = Number(process.env.BENCH_INC_MIB ?? 1024)
const ROUNDS = Math.max(3, Number(process.env.BENCH_INC_ROUNDS ?? 3))
const PERCENTS = [0, 0.1, 1, 10, 50]
const RESTORES = 5
const PAGE = 4096

type Tools = {kv: string; writer: string}
type Mode = 'full' | 'incr'
interface Save {us: number; bytes: number; blocks: number; written: number; taken: number; reflinked: number; copied: number; tracking: string; why: string}

function build(): Tools {
  execFileSync('make', ['-s', '-C', join(REPO, 'native')])
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures/kv'), `OUT=${work}`, `${work}/kv-pie`])
  const writer = join(work, 'write-loop')
  execFileSync('cc', ['-O2', '-o', writer, join(import.meta.dirname, '../cycle/write-loop.c')])
  return {kv: join(work, 'kv-pie'), writer}
}

function runtimeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, ...env}
  delete e.IMGDUMP_CONTROL_FD // a bench run under `imgdump run` must not hand its channel on
  return e
}

/**
 * One process per case: the first save of a fresh process is always full, so it only makes
 * the previous image; the second (`continue` before it, so tracking is armed) is measured.
 * The same seed in both modes dirties the same pages.
 */
function sessionSave(tools: Tools, image: string, pct: number, seed: number, mode: Mode, env: NodeJS.ProcessEnv): Save {
  const input = [`blob ${MIB}`, `timed-save ${image}`, `touch ${pct} ${seed}`, `timed-save ${image}`, 'exit 0'].join('\n') + '\n'
  const e = runtimeEnv({IMGDUMP_REPORT: '1', ...env})
  if (mode === 'full') e.IMGDUMP_INCREMENTAL = '0'
  else delete e.IMGDUMP_INCREMENTAL
  const r = spawnSync(tools.kv, [], {input, encoding: 'utf8', env: e, maxBuffer: 1 << 26})
  const us = [...r.stdout.matchAll(/save-us: (\d+)/g)].map((m) => Number(m[1]))
  const oks = r.stdout.match(/save: 0 ok/g)?.length ?? 0
  if (r.status !== 0 || oks !== 2 || us.length !== 2) throw new Error(`kv failed (${mode} ${pct}%):\n${r.stdout}\n${r.stderr}`)
  // The report of the measured save is the last one; `: full because …` when it fell back.
  const reports = [...r.stderr.matchAll(/save generation \d+: tracking (\S+), (\d+) pages written, (\d+) from the previous image \((\d+) reflinked, (\d+) copied\)(?:, \d+ zero pages left as holes)?(?:: full because (.*))?/g)]
  const m = reports.at(-1)
  if (!m) throw new Error(`no IMGDUMP_REPORT line:\n${r.stderr}`)
  const st = statSync(image)
  return {us: us[1], bytes: st.size, blocks: st.blocks * 512, tracking: m[1], written: Number(m[2]), taken: Number(m[3]),
    reflinked: Number(m[4]), copied: Number(m[5]), why: m[6] ?? ''}
}

function writeLoop(tools: Tools, bytes: number, sync: boolean): number {
  const file = join(work, 'loop.bin')
  rmSync(file, {force: true})
  const s = Number(execFileSync(tools.writer, [file, String(bytes), ...(sync ? [] : ['nosync'])], {encoding: 'utf8'}))
  rmSync(file, {force: true})
  return s * 1e6
}

/** Wall time of `echo 'exit 0' | program`: spawn, (restore,) run to `exit`. */
function restoreMs(program: string): number {
  const t0 = performance.now()
  const r = spawnSync(program, [], {input: 'exit 0\n', encoding: 'utf8', env: runtimeEnv({})})
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`${program} failed: ${r.stderr}`)
  return ms
}

const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y)
const mid = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]
const ms = (us: number) => (us / 1e3).toFixed(us < 1e4 ? 2 : 0)
const range = (xs: number[]) => `${ms(Math.min(...xs))}–${ms(Math.max(...xs))}`
const mib = (b: number) => (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0)

function table(rows: (string | number)[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  for (const r of rows) console.log(r.map((c, i) => String(c).padStart(widths[i])).join('  '))
}

/**
 * Rounds alternate the order of full and incremental (this VM's disk drifts several-fold
 * within seconds), so neither mode always runs on the warmer cache; ratios are per round,
 * then the median. Both modes' images are deleted after each dirty % (the last round first
 * execs them for the restore part).
 */
function saveBench(tools: Tools, sync: boolean): void {
  const env: NodeJS.ProcessEnv = sync ? {} : {IMGDUMP_SYNC: '0'}
  const saves = new Map<string, Save[]>()
  const loops = new Map<number, number[]>() // per dirty %: the write loop of the incremental's bytes
  const imageLoop: number[] = []
  const floor: number[] = []
  const restores: string[][] = []
  for (let round = 0; round < ROUNDS; round++) {
    const last = round === ROUNDS - 1
    floor.push(writeLoop(tools, 0, sync))
    PERCENTS.forEach((pct, i) => {
      const order: Mode[] = (round + i) % 2 ? ['incr', 'full'] : ['full', 'incr']
      const images: Record<Mode, string> = {full: '', incr: ''}
      for (const mode of order) {
        const dir = join(work, mode)
        mkdirSync(dir, {recursive: true})
        images[mode] = join(dir, `img-${pct}`)
        const s = sessionSave(tools, images[mode], pct, round * 100 + i, mode, env)
        saves.set(`${pct} ${mode}`, [...(saves.get(`${pct} ${mode}`) ?? []), s])
      }
      const incr = saves.get(`${pct} incr`)!.at(-1)!
      loops.set(pct, [...(loops.get(pct) ?? []), writeLoop(tools, incr.written * PAGE, sync)])
      if (last) restores.push(restoreRow(tools, pct, images))
      for (const image of Object.values(images)) rmSync(image, {force: true}) // 2 × SIZE on disk at most
    })
    imageLoop.push(writeLoop(tools, saves.get(`${PERCENTS[0]} full`)!.at(-1)!.bytes, sync))
  }

  console.log(`\nsave of a ${MIB} MiB heap after dirtying a share of its pages, ${sync ? 'fsync\'d (default)' : 'IMGDUMP_SYNC=0 (no fsync)'}; ` +
    `ms as the runtime sees it (planner start-up included), median and range of ${ROUNDS} alternated rounds; ` +
    'vs full = median of the rounds\' incremental/full ratios; pages: written from memory / taken from the previous image (reflinked, copied)')
  const rows: (string | number)[][] = [['dirty %', 'what', 'ms', 'range', 'image MiB', 'blocks MiB', 'pages written', 'from previous', 'vs full']]
  const odd: string[] = []
  for (const pct of PERCENTS) {
    const full = saves.get(`${pct} full`)!
    const incr = saves.get(`${pct} incr`)!
    for (const [what, runs] of [['full save', full], ['incremental save', incr]] as const) {
      const last = runs.at(-1)!
      const ratio = what === 'full save' ? '1.00' : mid(incr.map((s, i) => s.us / full[i].us)).toFixed(2)
      rows.push([pct, `${what} (${last.tracking})`, ms(mid(runs.map((s) => s.us))), range(runs.map((s) => s.us)),
        mib(last.bytes), mib(last.blocks), last.written, `${last.taken} (${last.reflinked}, ${last.copied})`, ratio])
    }
    const loop = loops.get(pct)!
    rows.push([pct, `write loop, ${mib(incr.at(-1)!.written * PAGE)} MiB (the pages written)`, ms(mid(loop)), range(loop), '', '', '', '',
      mid(loop.map((v, i) => v / full[i].us)).toFixed(2)])
    // A mode that did not do what it says is a finding, not noise: name it under the table.
    for (const s of incr) if (s.tracking !== 'uffd' || s.why) odd.push(`${pct}% incremental: tracking ${s.tracking}${s.why ? `, full because ${s.why}` : ''}`)
    for (const s of full) if (s.taken) odd.push(`${pct}% full: ${s.taken} pages taken from the previous image`)
    if (mid(incr.map((s) => s.us)) >= mid(full.map((s) => s.us))) odd.push(`${pct}%: the incremental save was not faster than the full one`)
  }
  const full0 = saves.get(`${PERCENTS[0]} full`)!
  rows.push(['–', `write loop, ${mib(full0.at(-1)!.bytes)} MiB (the image size)`, ms(mid(imageLoop)), range(imageLoop), '', '', '', '',
    mid(imageLoop.map((v, i) => v / full0[i].us)).toFixed(2)])
  rows.push(['–', `${sync ? 'fsync of' : 'create + close'} an empty file`, ms(mid(floor)), range(floor), '', '', '', '', ''])
  table(rows)
  for (const line of [...new Set(odd)]) console.log(`(!) ${line}`)

  console.log(`\nrestore: wall ms of \`echo 'exit 0' | X\` for the last round's final images, median of ${RESTORES} alternated runs; ratio against the plain runtime`)
  table([['dirty %', 'kv-pie', 'full image', 'ratio', 'incremental image', 'ratio'], ...restores])
}

function restoreRow(tools: Tools, pct: number, images: Record<Mode, string>): string[] {
  const plain: number[] = []
  const full: number[] = []
  const incr: number[] = []
  for (let i = 0; i < RESTORES; i++) plain.push(restoreMs(tools.kv)), full.push(restoreMs(images.full)), incr.push(restoreMs(images.incr))
  const ratio = (xs: number[]) => mid(xs.map((v, i) => v / plain[i])).toFixed(2)
  return [String(pct), mid(plain).toFixed(1), mid(full).toFixed(1), ratio(full), mid(incr).toFixed(1), ratio(incr)]
}

try {
  const tools = build()
  saveBench(tools, true)
  if (process.env.BENCH_INC_NOSYNC === '1') saveBench(tools, false)
} finally {
  rmSync(work, {recursive: true, force: true})
}
