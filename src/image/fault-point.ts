/**
 * Deterministic fault injection (docs/protocol.md "Fault injection"): when IMGDUMP_FAULT
 * names this phase, the planner kills itself with SIGKILL right here, so tests can check
 * that the previous image survives and no temporary file is left behind.
 */
export type PlannerFaultPhase = 'planned' | 'headers' | 'fsync' | 'linked'

export function faultPoint(phase: PlannerFaultPhase): void {
  if (process.env.IMGDUMP_FAULT === phase) process.kill(process.pid, 'SIGKILL')
}
