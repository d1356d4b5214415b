/**
 * Deterministic fault injection for save tests (docs/protocol.md, "Fault injection"):
 * `IMGDUMP_FAULT=<phase>` makes the planner kill itself with SIGKILL when it reaches that
 * phase, exactly as a crash would (no cleanup, no exit handlers). Planner phases:
 *   planned  — the plan and the output fd have been sent to the runtime (session side)
 *   headers  — headers and manifest are written, before fsync (image side, finalizeImage)
 *   fsync    — the temp file is fsync'd, before it is linked (image side)
 *   linked   — the temp file is linked under a temp name, before the rename (image side)
 */
export type PlannerFault = 'planned' | 'headers' | 'fsync' | 'linked'

export function faultPoint(name: PlannerFault): void {
  if (process.env.IMGDUMP_FAULT === name) process.kill(process.pid, 'SIGKILL')
}
