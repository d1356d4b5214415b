/**
 * The image side's entry points for the session side (save-types.ts): plan an image for a
 * save request, optionally write the file-taken parts early, then finalize and commit.
 * ELF (elf-plan.ts, elf-finalize.ts) and thin Mach-O (macho-plan.ts).
 */
import {ImgdumpError} from '../errors.js'
import {finalizeElfImage, prepareElfOutput} from './elf-finalize.js'
import {planElfImage, type ElfImagePlan} from './elf-plan.js'
import {finalizeMachoImage, planMachoImage, type MachoImagePlan} from './macho-plan.js'
import type {ImagePlan, PendingOutput, SaveIncrement, SaveRequest, SaveResult} from './save-types.js'
import {fileFormat} from '../inspect/file-format.js'
import {runningExecutable} from './running-executable.js'

export {createPendingOutput} from './output-file.js'


function asElf(plan: ImagePlan): ElfImagePlan {
  if (!('elf' in plan)) throw new ImgdumpError('internal', 'NOT_AN_ELF_PLAN', 'plan was not made by planImage for an ELF runtime')
  return plan as ElfImagePlan
}

export function planImage(req: SaveRequest): ImagePlan {
  const format = fileFormat(runningExecutable(req).open)
  if (format === 'elf') return planElfImage(req)
  if (format === 'macho' || format === 'fat') return planMachoImage(req) // refuses fat files with its own reason
  throw new ImgdumpError('edit', 'IMAGE_FORMAT_UNSUPPORTED', `${req.exe}: not an ELF or Mach-O executable`)
}

/** Write the parts of the image that come from the original file (may run before the runtime writes). */
export function prepareOutput(plan: ImagePlan, pending: PendingOutput): void {
  // Mach-O: every non-memory byte is written at finalize (the image is built whole).
  if ('macho' in plan) return
  prepareElfOutput(asElf(plan), pending)
}

export function finalizeImage(plan: ImagePlan, pending: PendingOutput, crcs: readonly number[], increment?: SaveIncrement): SaveResult {
  if ('macho' in plan) return finalizeMachoImage(plan as MachoImagePlan, pending, crcs, increment)
  return finalizeElfImage(asElf(plan), pending, crcs, increment)
}
