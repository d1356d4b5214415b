/**
 * The image side's entry points for the session side (save-types.ts): plan an image for a
 * save request, optionally write the file-taken parts early, then finalize and commit.
 * ELF (elf-plan.ts, elf-finalize.ts) and thin Mach-O (macho-plan.ts).
 */
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {finalizeElfImage, prepareElfOutput} from './elf-finalize.js'
import {planElfImage, type ElfImagePlan} from './elf-plan.js'
import {finalizeMachoImage, planMachoImage, type MachoImagePlan} from './macho-plan.js'
import type {ImagePlan, PendingOutput, SaveRequest, SaveResult} from './save-types.js'

export {createPendingOutput} from './output-file.js'

function formatOf(path: string): 'elf' | 'macho' | 'unknown' {
  let fd: number
  try { fd = fs.openSync(path, 'r') } catch (err) { throw ioError(err, path) }
  try {
    const b = Buffer.alloc(4)
    fs.readSync(fd, b, 0, 4, 0)
    if (b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return 'elf'
    const m = b.readUInt32LE(0)
    if (m === 0xfeedfacf || m === 0xcafebabe || m === 0xbebafeca) return 'macho'
    return 'unknown'
  } finally {
    fs.closeSync(fd)
  }
}

function asElf(plan: ImagePlan): ElfImagePlan {
  if (!('elf' in plan)) throw new ImgdumpError('internal', 'NOT_AN_ELF_PLAN', 'plan was not made by planImage for an ELF runtime')
  return plan as ElfImagePlan
}

export function planImage(req: SaveRequest): ImagePlan {
  const format = formatOf(req.exe)
  if (format === 'elf') return planElfImage(req)
  if (format === 'macho') return planMachoImage(req)
  throw new ImgdumpError('edit', 'IMAGE_FORMAT_UNSUPPORTED', `${req.exe}: not an ELF or Mach-O executable`)
}

/** Write the parts of the image that come from the original file (may run before the runtime writes). */
export function prepareOutput(plan: ImagePlan, pending: PendingOutput): void {
  // Mach-O: every non-memory byte is written at finalize (the image is built whole).
  if ('macho' in plan) return
  prepareElfOutput(asElf(plan), pending)
}

export function finalizeImage(plan: ImagePlan, pending: PendingOutput, crcs: readonly number[]): SaveResult {
  if ('macho' in plan) return finalizeMachoImage(plan as MachoImagePlan, pending, crcs)
  return finalizeElfImage(asElf(plan), pending, crcs)
}
