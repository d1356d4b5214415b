import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import type {SaveMode} from '../image/save-types.js'
import {formatBytes, mbPerSecond} from '../session/format.js'
import {findSession} from '../session/registry.js'
import {requestSessionSave, type SaveStatus} from '../session/save-client.js'

export interface SaveCommandResult {
  session: string
  pid: number
  path: string
  mode: SaveMode
  bytes: number
  pages: number
  ms: number
  mbPerSecond: number
  /** How the save used the previous image: tracking method, pages taken from it, why it was full. */
  tracking: string
  pagesFromPrevious: number
  reflinked: number
  copied: number
  /** All-zero pages left as holes in the image. */
  holes: number
  fullBecause?: string
}

export default class Save extends BaseCommand {
  static override description = `Save a running session as an executable image

Asks the session (by name, or by the PID of its runtime) to save at its next imgdump_safepoint(). The runtime writes its memory into the image; imgdump writes the rest and renames the finished file over the target atomically.

When the runtime has a previous image (the one it runs from, or its last save with CONTINUE), the save is incremental: pages not written since are copied from that image (shared extents on XFS and btrfs) and only the written pages come from memory. The result is still a whole, standalone image.

Prints size, pages written, pages taken from the previous image, time and throughput. --exec continues the runtime from the new image (same PID); --exit ends it after the save. Exit codes: 9 no such session, 10 the runtime refused.`

  static override examples = [
    '<%= config.bin %> save work -o work.img',
    '<%= config.bin %> save 12345 -o /tmp/snap.img --exec',
    '<%= config.bin %> save work -o final.img --exit --json',
  ]

  static override flags = {
    output: Flags.string({char: 'o', description: 'image to write (replaced atomically)', required: true}),
    exec: Flags.boolean({description: 'continue the runtime from the new image (execve, same PID)', exclusive: ['exit']}),
    exit: Flags.boolean({description: 'end the runtime (exit 0) after the save', exclusive: ['exec']}),
  }

  static override args = {
    session: Args.string({description: 'session name or PID (see `imgdump sessions`)', required: true}),
  }

  async run(): Promise<SaveCommandResult> {
    const {args, flags} = await this.parse(Save)
    const session = findSession(args.session)
    const target = path.resolve(flags.output)
    const mode: SaveMode = flags.exec ? 'exec' : flags.exit ? 'exit' : 'continue'
    const progress = process.stderr.isTTY && !this.jsonEnabled() ? progressLine(session.name) : undefined
    let saved
    try {
      saved = await requestSessionSave(session.socket, session.name, target, mode, progress?.update)
    } finally {
      progress?.clear()
    }
    const inc = saved.increment
    const result: SaveCommandResult = {
      session: session.name, pid: session.pid, path: saved.path, mode,
      bytes: saved.bytes, pages: saved.pages, ms: saved.ms, mbPerSecond: mbPerSecond(saved.bytes, saved.ms),
      tracking: inc?.tracking ?? 'none', pagesFromPrevious: inc?.pagesFromPrevious ?? 0, reflinked: inc?.reflinked ?? 0,
      copied: inc?.copied ?? 0, holes: inc?.holes ?? 0, ...(inc?.why ? {fullBecause: inc.why} : {}),
    }
    const how = result.pagesFromPrevious > 0
      ? ` (+${result.pagesFromPrevious} from the previous image, ${result.reflinked ? 'reflinked' : 'copied'}; tracking ${result.tracking})`
      : result.fullBecause ? ` (full: ${result.fullBecause})` : ''
    this.log(`saved ${result.path}: ${formatBytes(result.bytes)}, ${result.pages} pages written${how}, ` +
      `${result.ms.toFixed(1)} ms, ${result.mbPerSecond} MB/s`)
    return result
  }
}

/** One self-overwriting status line on a terminal's stderr. */
function progressLine(name: string): {update: (s: SaveStatus) => void; clear: () => void} {
  let shown = false
  return {
    update(s) {
      const text = s.state === 'waiting'
        ? `waiting for ${name} to reach a safepoint${s.connected ? '' : ' (runtime not connected yet)'}…`
        : `writing ${formatBytes(s.bytes ?? 0)} of ${formatBytes(s.total ?? 0)}` +
          (s.total ? ` (${Math.floor(((s.bytes ?? 0) / s.total) * 100)}%)` : '')
      process.stderr.write(`\r\x1b[K${text}`)
      shown = true
    },
    clear() {
      if (shown) process.stderr.write('\r\x1b[K')
    },
  }
}
