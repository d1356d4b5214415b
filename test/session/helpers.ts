/**
 * Shared test fixtures for the session tests: the C stand-in runtime (fixtures/peer.c),
 * compiled once into a temp dir, and a stub image side that plans a trivial file layout
 * (header page, then the "heap") and checks the runtime's CRCs by reading the file back.
 */
import {execFileSync, spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {crc32c} from '@node-rs/crc32'
import {ImgdumpError} from '../../src/errors.js'
import type {ImagePlan, PendingOutput, SaveRequest, SaveResult} from '../../src/image/save-types.js'
import type {ImageSide} from '../../src/session/image-side.js'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '../..')
export const cliPath = path.join(repoRoot, 'bin/run.js')

let tmpRoot: string | undefined
/** A fresh temp dir under one per-run root (removed by cleanupTemp). */
export function tempDir(prefix = 'imgdump-session-'): string {
  tmpRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return fs.mkdtempSync(path.join(tmpRoot, 'd'))
}

export function cleanupTemp(): void {
  if (tmpRoot) fs.rmSync(tmpRoot, {recursive: true, force: true})
  tmpRoot = undefined
}

let peer: string | undefined
/** Path of the compiled C stand-in runtime. */
export function peerBinary(): string {
  if (peer && fs.existsSync(peer)) return peer
  const dir = tempDir()
  peer = path.join(dir, 'peer')
  execFileSync('cc', ['-O1', '-Wall', '-o', peer, path.join(here, 'fixtures/peer.c')])
  return peer
}

/** The byte the peer stores at heap offset i (independent copy of peer.c's pattern). */
export const peerPattern = (i: number) => (i * 7 + 3) & 0xff

export const STUB_MAGIC = Buffer.from('STUBIMG\n')

/** A stub image side: header page at 0 (magic), heap header page at 0x1000, rest after it. */
export function stubImageSide(log: string[] = [], opts: {durable?: boolean; rewritesOutput?: boolean} = {}): () => Promise<ImageSide> {
  const side: ImageSide = {
    planImage(req: SaveRequest): ImagePlan {
      log.push('plan')
      const size = req.heap.brk - req.heap.base
      const writes = [
        {addr: req.heap.base, size: 0x1000n, offset: 0x1000n},
        {addr: req.heap.base + 0x1000n, size: size - 0x1000n, offset: 0x2000n},
      ]
      return {request: req, writes, headerCopy: req.heap.header, fileSize: 0x1000n + size, rewritesOutput: opts.rewritesOutput}
    },
    createPendingOutput(target: string): PendingOutput {
      log.push('create')
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}`)
      let fd = fs.openSync(tmp, 'w+', 0o700)
      return {
        get fd() { return fd },
        target,
        durable: opts.durable ?? true,
        commit() { fs.fsyncSync(fd); fs.closeSync(fd); fd = -1; fs.renameSync(tmp, target); log.push('commit') },
        discard() { if (fd >= 0) { fs.closeSync(fd); fd = -1; fs.rmSync(tmp, {force: true}); log.push('discard') } },
      }
    },
    finalizeImage(plan: ImagePlan, pending: PendingOutput, crcs: number[]): SaveResult {
      log.push('finalize')
      fs.writeSync(pending.fd, STUB_MAGIC, 0, STUB_MAGIC.length, 0)
      plan.writes.forEach((w, i) => {
        const b = Buffer.alloc(Number(w.size))
        fs.readSync(pending.fd, b, 0, b.length, Number(w.offset))
        if (crc32c(b) !== crcs[i]) throw new ImgdumpError('verify', 'CRC_MISMATCH', `write ${i}: crc mismatch`)
      })
      pending.commit()
      return {path: pending.target, bytes: plan.fileSize, pages: Number(plan.fileSize / 4096n) - 1, ms: 0}
    },
  }
  return async () => side
}

export interface Ran {status: number | null; stdout: string; stderr: string}

/** The CLI run asynchronously, so an orchestrator in this process keeps serving meanwhile. */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn(process.execPath, [cliPath, ...args], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (status) => resolve({status, stdout, stderr})))
}
