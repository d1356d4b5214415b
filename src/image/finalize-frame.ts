/**
 * What every format's planner and finalizer share: typed save/edit errors, whole-buffer
 * positioned I/O on the output, and the frame of a finalize — the CRC count check, the
 * result record, and on any failure discarding the output (the previous image survives) with
 * the error typed.
 */
import fs from 'node:fs'
import {alignUp} from '../binary/align.js'
import {asTypedError, ImgdumpError} from '../errors.js'
import type {ImagePlan, PendingOutput, SaveIncrement, SaveResult} from './save-types.js'

export const saveError = (code: string, message: string, value?: bigint | number | string, hint?: string) =>
  new ImgdumpError('save', code, `${message} [${code}]`, {value, hint})
export const editError = (code: string, message: string, value?: bigint | number | string, hint?: string) =>
  new ImgdumpError('edit', code, `${message} [${code}]`, {value, hint})

export function writeAt(fd: number, bytes: Uint8Array, offset: bigint | number): void {
  let done = 0
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, Number(offset) + done)
}

export function readAt(fd: number, offset: bigint, length: bigint): Buffer {
  const out = Buffer.alloc(Number(length))
  let done = 0
  while (done < out.length) {
    const n = fs.readSync(fd, out, done, out.length - done, Number(offset) + done)
    if (n === 0) break
    done += n
  }
  return out
}

/**
 * Run a format's `finish` (write headers and manifest, validate, `pending.commit()`) after the
 * runtime wrote every planned range (`crcs`: one CRC32C per write, in plan order).
 */
export function finalizeFrame(plan: ImagePlan, pending: PendingOutput, crcs: readonly number[], startedAt: number,
  finish: () => void, increment?: SaveIncrement): SaveResult {
  try {
    if (crcs.length !== plan.writes.length) {
      throw saveError('IMAGE_BAD_CRCS', `the runtime reported ${crcs.length} checksums for ${plan.writes.length} writes`, crcs.length)
    }
    finish()
    let memoryBytes = 0n
    for (const w of plan.writes) memoryBytes += w.size
    // Pages the runtime wrote from memory; an incremental save took the others from its previous image.
    const pages = increment ? increment.pagesWritten : Number(alignUp(memoryBytes, 4096n) / 4096n)
    return {path: pending.target, bytes: plan.fileSize, pages, ms: performance.now() - startedAt, ...(increment ? {increment} : {})}
  } catch (err) {
    pending.discard()
    throw asTypedError(err, `cannot write ${pending.target}`)
  }
}
