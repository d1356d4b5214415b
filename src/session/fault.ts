/**
 * Deterministic fault injection for save tests (docs/protocol.md, "Fault injection"): one
 * implementation for the whole planner, in src/image/fault-point.ts (`headers`, `fsync` and
 * `linked` happen inside finalizeImage); the session side reaches `planned` — the plan and
 * the output fd have been sent to the runtime.
 */
export {faultPoint, type PlannerFaultPhase} from '../image/fault-point.js'
