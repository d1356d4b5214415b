/**
 * The standalone planner (`imgdump plan-save --fd N`), started by libimgdump's
 * imgdump_save when no orchestrator is present: one connection, exactly one save.
 */
import {ImgdumpError} from '../errors.js'
import {loadImageSide, type ImageSide} from './image-side.js'
import {PlannerSession, type SaveOutcome} from './planner-session.js'

/** Serve hello + one save on `fd`; resolves with its outcome once the connection is closed. */
export function serveOneSave(fd: number, imageSide: () => Promise<ImageSide> = loadImageSide): Promise<SaveOutcome> {
  return new Promise((resolve) => {
    let outcome: SaveOutcome | undefined
    const session: PlannerSession = new PlannerSession(fd, imageSide, {
      saveEnded(o) {
        outcome ??= o
        session.close()
      },
      closed(err) {
        resolve(outcome ?? {ok: false, error: err ?? new ImgdumpError('session', 'RUNTIME_GONE', 'the runtime closed the connection before asking for a save')})
      },
    })
  })
}
