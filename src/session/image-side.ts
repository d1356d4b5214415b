/**
 * The one place the session side reaches the image side (src/image): planning an image
 * from a save request, creating the pending output, finalizing it after the runtime wrote
 * its ranges. Imported lazily (the image side pulls in the ELF model), so `plan-save`
 * starts fast and commands that never save do not load it.
 */
import type {ImagePlan, PendingOutput, SaveIncrement, SaveRequest, SaveResult} from '../image/save-types.js'

export interface ImageSide {
  planImage(req: SaveRequest): ImagePlan | Promise<ImagePlan>
  createPendingOutput(target: string): PendingOutput | Promise<PendingOutput>
  /** Writes the parts of the file taken from the executable, before the runtime writes. */
  prepareOutput?(plan: ImagePlan, pending: PendingOutput): void | Promise<void>
  finalizeImage(plan: ImagePlan, pending: PendingOutput, crcs: number[], increment?: SaveIncrement): SaveResult | Promise<SaveResult>
}

export async function loadImageSide(): Promise<ImageSide> {
  return await import('../image/plan-image.js')
}
