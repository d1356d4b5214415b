#!/usr/bin/env node
// bench/alloc: libimgdump's allocator against glibc malloc and mimalloc on mixed workloads
// (small-object churn, Lisp-like conses, large realloc growth, 4-thread churn). Each
// workload runs in its own process (its own peak RSS), allocators interleaved round by
// round so machine noise hits all alike; the best wall time, the best CPU time (user+sys)
// and the lowest peak RSS of the rounds are compared. Throughput is judged on CPU time:
// on a shared 2-core VM the wall clock mostly measures the neighbours. Targets (DESIGN §8):
// throughput >= 0.8x glibc, peak RSS <= 1.2x.
//   env: BENCH_ROUNDS (default 3), BENCH_SCALE (default 1), --json for machine output.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '../..')
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const scale = process.env.BENCH_SCALE ?? '1'
const json = process.argv.includes('--json')
const workloads = ['churn', 'cons', 'realloc', 'threads']

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 64 << 20, ...opts})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`)
  return r.stdout
}

function build(dir) {
  sh('make', ['-s', '-C', join(root, 'native')])
  const src = join(here, 'alloc-bench.c')
  const cfg = JSON.parse(sh(process.execPath, [join(root, 'bin/run.js'), 'config', '--cflags', '--libs', '--json']))
  const exes = {}
  exes.glibc = join(dir, 'bench-glibc')
  sh('cc', ['-O2', '-o', exes.glibc, src, '-lpthread'])
  exes.libimgdump = join(dir, 'bench-libimgdump')
  sh('cc', ['-O2', '-o', exes.libimgdump, src, ...cfg.cflags, ...cfg.libs])
  const mi = spawnSync('cc', ['-O2', '-o', join(dir, 'bench-mimalloc'), src, '-lmimalloc', '-lpthread'], {encoding: 'utf8'})
  if (mi.status === 0) exes.mimalloc = join(dir, 'bench-mimalloc')
  else console.error('(mimalloc not available: install libmimalloc-dev to compare with it)')
  return exes
}

function runOnce(exe, workload) {
  const out = sh(exe, [workload, scale])
  const m = /seconds=([\d.]+) cpu=([\d.]+) maxrss_kb=(\d+)/.exec(out)
  if (!m) throw new Error(`unexpected output from ${exe}: ${out}`)
  return {seconds: Number(m[1]), cpu: Number(m[2]), rssKb: Number(m[3])}
}

const dir = mkdtempSync(join(tmpdir(), 'imgdump-bench-alloc-'))
try {
  const exes = build(dir)
  const names = Object.keys(exes)
  const best = {}
  for (const w of workloads) {
    best[w] = {}
    for (let r = 0; r < rounds; r++)
      for (const n of names) {
        const {seconds, cpu, rssKb} = runOnce(exes[n], w)
        const b = best[w][n] ?? {seconds: Infinity, cpu: Infinity, rssKb: Infinity}
        best[w][n] = {seconds: Math.min(b.seconds, seconds), cpu: Math.min(b.cpu, cpu), rssKb: Math.min(b.rssKb, rssKb)}
      }
  }
  const rows = workloads.map((w) => {
    const g = best[w].glibc
    const row = {workload: w}
    for (const n of names) {
      row[n] = best[w][n]
      row[`${n}Throughput`] = g.cpu / best[w][n].cpu
      row[`${n}WallThroughput`] = g.seconds / best[w][n].seconds
      row[`${n}Rss`] = best[w][n].rssKb / g.rssKb
    }
    row.ok = row.libimgdumpThroughput >= 0.8 && row.libimgdumpRss <= 1.2
    return row
  })
  if (json) {
    console.log(JSON.stringify({rounds, scale: Number(scale), rows}, null, 2))
  } else {
    const f = (x) => x.toFixed(2)
    console.log(`allocator bench: best of ${rounds} rounds, scale ${scale}; ratios vs glibc (thr = throughput by CPU time, wall = by wall clock: higher is better; rss: lower)`)
    const head = ['workload', ...names.map((n) => `${n} cpu s`), ...names.map((n) => `${n} MiB`), 'imgdump thr', 'imgdump wall', 'imgdump rss',
      ...(exes.mimalloc ? ['mimalloc thr', 'mimalloc rss'] : []), 'target']
    const lines = rows.map((r) => [r.workload, ...names.map((n) => r[n].cpu.toFixed(3)), ...names.map((n) => (r[n].rssKb / 1024).toFixed(1)),
      f(r.libimgdumpThroughput), f(r.libimgdumpWallThroughput), f(r.libimgdumpRss), ...(exes.mimalloc ? [f(r.mimallocThroughput), f(r.mimallocRss)] : []),
      r.ok ? 'ok' : 'MISS'])
    const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
    for (const l of [head, ...lines]) console.log(l.map((c, i) => c.padStart(widths[i])).join('  '))
    console.log('targets: imgdump thr >= 0.80 and imgdump rss <= 1.20 (DESIGN §8)')
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}
