#!/usr/bin/env node
// `npm run bench`: every benchmark, each printing its own table of ratios against a
// baseline measured in the same run. `npm run bench -- cycle` runs one of them.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const benches = [
  ['alloc', 'alloc/run.js'],
  ['cycle', 'cycle/cycle-bench.ts'],
  ['incremental', 'incremental/incremental-bench.ts'],
]
const only = process.argv.slice(2)
let failed = 0
for (const [name, file] of benches) {
  if (only.length && !only.includes(name)) continue
  const path = join(here, file)
  if (!existsSync(path)) {
    console.log(`(bench ${name}: ${file} is missing)`)
    continue
  }
  console.log(`\n=== bench ${name}`)
  const args = file.endsWith('.ts') ? ['--import', 'tsx', path] : [path]
  const r = spawnSync(process.execPath, args, {stdio: 'inherit'})
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
