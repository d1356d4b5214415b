#!/usr/bin/env node
// Entry point of the imgdump CLI: oclif finds the commands through package.json.
//
// Fast path: `imgdump plan-save --fd N` is started by libimgdump inside every standalone
// save, so its start-up is part of the save's latency. It skips oclif's command discovery
// and goes straight to the planner (the oclif command of the same name stays for --help).
const [, , command, flag, value] = process.argv
if (command === 'plan-save' && flag === '--fd' && /^\d+$/.test(value ?? '') && process.argv.length === 5) {
  const {serveOneSave} = await import('../dist/session/standalone.js')
  const {exitCodeFor} = await import('../dist/exit-codes.js')
  const outcome = await serveOneSave(Number(value))
  if (!outcome.ok && process.env.IMGDUMP_DEBUG) process.stderr.write(`imgdump plan-save: ${outcome.error.message}\n`)
  process.exit(outcome.ok ? 0 : exitCodeFor(outcome.error.phase))
}

const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
