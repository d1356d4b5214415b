/**
 * The planner's end of one control connection (docs/protocol.md): hello/welcome, then
 * saves one at a time — plan with the image side, hand the output fd to the runtime, wait
 * for `written`/`failed`, finalize or discard, answer `done`/`error`. Used by both
 * `imgdump plan-save` (one save, then the connection ends) and `imgdump run` (any number
 * of saves, re-hello after IMGDUMP_EXEC, saves requested from outside).
 */
import type {ImagePlan, PendingOutput, SaveIncrement, SaveMode, SaveRequest, SaveResult} from '../image/save-types.js'
import {ImgdumpError, asTypedError} from '../errors.js'
import {Channel} from './channel.js'
import {faultPoint} from './fault.js'
import type {ImageSide} from './image-side.js'
import {CANCELLED, PROTOCOL_VERSION, type Hello, type Refused, type RuntimeMessage, type SaveMessage,
  type Written, type Failed} from './protocol.js'

export type SaveOutcome =
  | {ok: true; request: SaveRequest; result: SaveResult}
  | {ok: false; request?: SaveRequest; error: ImgdumpError}

export interface PlannerEvents {
  hello?(h: Hello): void
  /** A save started (the runtime sent `save`). */
  /** The runtime has the fd and is writing `plan.writes` into `pending`. */
  writing?(plan: ImagePlan, pending: PendingOutput): void
  saveEnded?(outcome: SaveOutcome): void
  closed?(err?: ImgdumpError): void
}

interface InFlight {
  req: SaveRequest
  started: number
  plan?: ImagePlan
  pending?: PendingOutput
}

/** Ids of saves requested by the orchestrator start here, away from the runtime's own ids. */
const REQUEST_ID_BASE = 1 << 20

export class PlannerSession {
  readonly channel: Channel
  private greeted = false
  private current: InFlight | undefined
  private queue: Promise<void> = Promise.resolve()
  private nextRequestId = REQUEST_ID_BASE
  private deferred: (() => void)[] = []
  private readonly requests = new Map<number, {resolve: (o: SaveOutcome) => void; cancelled: boolean}>()

  constructor(fd: number, private readonly imageSide: () => Promise<ImageSide>, private readonly events: PlannerEvents = {}) {
    this.channel = new Channel(fd, {
      // Messages are handled strictly in order, each after the previous one's async work.
      message: (m) => this.enqueue(() => this.handle(m)),
      invalid: (err) => this.enqueue(async () => this.protocolError(err)),
      closed: (err) => this.onClosed(err),
    })
  }

  get connected(): boolean {
    return this.greeted && !this.channel.closed
  }

  /** A save is running or requested. A cancelled request does not count: it ends as soon as
   * the runtime gets to it, and a new request may be queued behind it. */
  get busy(): boolean {
    return this.current !== undefined || [...this.requests.values()].some((r) => !r.cancelled)
  }

  /**
   * Ask the runtime to save at its next safepoint (orchestrated mode). Resolves when that
   * save is done, failed, refused, or the connection ends.
   */
  requestSave(path: string, mode: SaveMode): {id: number; outcome: Promise<SaveOutcome>} {
    const id = this.nextRequestId++
    const outcome = new Promise<SaveOutcome>((resolve) => this.requests.set(id, {resolve, cancelled: false}))
    const send = () => {
      try {
        this.channel.send({t: 'request-save', id, path, mode})
      } catch (err) {
        this.settleRequest(id, {ok: false, error: err as ImgdumpError})
      }
    }
    // The runtime reads a request only at a safepoint, after its hello was welcomed and
    // outside a save (then it reads only that save's answers): until then, hold it back.
    this.deferred.push(send)
    this.flushDeferred()
    return {id, outcome}
  }

  private flushDeferred(): void {
    if (this.current || !this.greeted || this.channel.closed) return
    const sends = this.deferred
    this.deferred = []
    for (const send of sends) send()
  }

  /** The requester went away: when the runtime starts this save, answer CANCELLED. */
  cancelRequest(id: number): void {
    const r = this.requests.get(id)
    if (r) r.cancelled = true
  }

  close(): void {
    this.channel.close()
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((err) => this.protocolError(asTyped(err)))
  }

  private async handle(m: RuntimeMessage): Promise<void> {
    switch (m.t) {
      case 'hello': return this.onHello(m)
      case 'save': return this.onSave(m)
      case 'written': return this.onWritten(m)
      case 'failed': return this.onFailed(m)
      case 'refused': return this.onRefused(m)
    }
  }

  private onHello(h: Hello): void {
    if (this.current) {
      // No `error` answer (and no request) now: the runtime waits for `welcome`.
      this.greeted = false
      this.current.pending?.discard()
      this.endSave({ok: false, request: this.current.req, error: protoError('PROTO_UNEXPECTED', 'the runtime said hello again in the middle of a save')})
    }
    if (h.v !== PROTOCOL_VERSION) {
      this.channel.send({t: 'error', code: 'PROTO_VERSION', message: `protocol version ${h.v} is not supported (this imgdump speaks ${PROTOCOL_VERSION})`})
      this.channel.close(protoError('PROTO_VERSION', `the runtime speaks protocol version ${h.v}, not ${PROTOCOL_VERSION}`))
      return
    }
    this.greeted = true
    this.channel.send({t: 'welcome', v: PROTOCOL_VERSION})
    this.events.hello?.(h)
    this.flushDeferred()
  }

  private async onSave(m: SaveMessage): Promise<void> {
    if (!this.greeted) throw protoError('PROTO_UNEXPECTED', 'save before hello')
    if (this.current) throw protoError('PROTO_UNEXPECTED', `save ${m.id} while save ${this.current.req.id} is in progress`)
    const {t: _t, ...req} = m
    const request = this.requests.get(req.id)
    if (request?.cancelled) {
      this.channel.send({t: 'error', id: req.id, code: CANCELLED, message: 'the save was cancelled by its requester'})
      this.settleRequest(req.id, {ok: false, request: req, error: new ImgdumpError('save', 'SAVE_CANCELLED', 'the save was cancelled')})
      return
    }
    const flight: InFlight = {req, started: performance.now()}
    this.current = flight
    try {
      const side = await this.imageSide()
      flight.plan = await side.planImage(req)
      flight.pending = await side.createPendingOutput(req.path)
      if (side.prepareOutput) await side.prepareOutput(flight.plan, flight.pending)
      this.channel.send({t: 'plan', id: req.id, writes: flight.plan.writes, headerCopy: flight.plan.headerCopy,
        flush: flight.pending.durable && !flight.plan.rewritesOutput}, flight.pending.fd)
    } catch (err) {
      this.failCurrent(asTyped(err))
      return
    }
    faultPoint('planned')
    this.events.writing?.(flight.plan, flight.pending)
  }

  private async onWritten(w: Written): Promise<void> {
    const flight = this.expectWriting(w.id)
    const plan = flight.plan!
    try {
      if (w.crc32c.length !== plan.writes.length) {
        throw protoError('PROTO_BAD_FIELD', `written: ${w.crc32c.length} checksums for ${plan.writes.length} planned writes`)
      }
      const planned = plan.writes.reduce((s, x) => s + x.size, 0n)
      if (w.bytes !== planned) throw protoError('PROTO_BAD_FIELD', `written: ${w.bytes} bytes reported, ${planned} planned`)
      const side = await this.imageSide()
      const increment = summarizeIncrement(plan, w)
      const result = await side.finalizeImage(plan, flight.pending!, w.crc32c, increment)
      const ms = Math.round((performance.now() - flight.started) * 100) / 100
      const done = {...result, ms}
      this.channel.send({t: 'done', id: w.id, path: done.path, bytes: done.bytes, pages: done.pages, ms})
      this.endSave({ok: true, request: flight.req, result: done})
    } catch (err) {
      this.failCurrent(asTyped(err))
    }
  }

  private onFailed(f: Failed): void {
    const flight = this.expectWriting(f.id)
    const error = new ImgdumpError('save', 'RUNTIME_WRITE_FAILED', `the runtime could not write the image: ${f.message} (errno ${f.errno})`, {value: f.errno})
    this.failCurrent(error, flight)
  }

  /**
   * A requested save that could not start. Not answered: the runtime expects no reply, and
   * an unsolicited line would be read as the answer to its next message. A refusal of a
   * request already settled (e.g. answered CANCELLED) is ignored the same way.
   */
  private onRefused(r: Refused): void {
    const error = new ImgdumpError('save', 'RUNTIME_REFUSED', `the runtime refused to save: ${r.message}`, {value: r.code})
    this.settleRequest(r.id, {ok: false, error})
  }

  private expectWriting(id: number): InFlight {
    const flight = this.current
    if (!flight?.pending) throw protoError('PROTO_UNEXPECTED', `no save is waiting for the runtime's writes (id ${id})`)
    if (flight.req.id !== id) throw protoError('PROTO_BAD_ID', `message for save ${id} during save ${flight.req.id}`)
    return flight
  }

  /** Discard the output, tell the runtime, end the save. The previous image is untouched. */
  private failCurrent(error: ImgdumpError, flight = this.current): void {
    if (!flight) return
    flight.pending?.discard()
    if (!this.channel.closed) {
      try {
        this.channel.send({t: 'error', id: flight.req.id, code: error.code, message: error.message})
      } catch {
        // The runtime is gone; the outcome below still reports the first error.
      }
    }
    this.endSave({ok: false, request: flight.req, error})
  }

  private endSave(outcome: SaveOutcome): void {
    if (outcome.request && this.current?.req === outcome.request) this.current = undefined
    if (outcome.request) this.settleRequest(outcome.request.id, outcome)
    // After IMGDUMP_EXEC the image starts over with a new hello; after IMGDUMP_EXIT it is gone.
    if (outcome.ok && outcome.request.mode !== 'continue') this.greeted = false
    this.events.saveEnded?.(outcome)
    this.flushDeferred()
  }

  private settleRequest(id: number, outcome: SaveOutcome): boolean {
    const r = this.requests.get(id)
    if (!r) return false
    this.requests.delete(id)
    r.resolve(outcome)
    return true
  }

  /** A message that broke the protocol: answer `error`, abandon any save in progress. */
  private protocolError(err: ImgdumpError): void {
    if (this.current) {
      this.failCurrent(err)
      return
    }
    if (!this.channel.closed) {
      try {
        this.channel.send({t: 'error', code: err.code, message: err.message})
      } catch {
        // nothing more to tell a runtime that is gone
      }
    }
    this.events.saveEnded?.({ok: false, error: err})
  }

  private onClosed(err?: ImgdumpError): void {
    const gone = err ?? new ImgdumpError('session', 'RUNTIME_GONE', 'the runtime closed the control connection')
    if (this.current) {
      this.current.pending?.discard()
      const req = this.current.req
      this.current = undefined
      this.settleRequest(req.id, {ok: false, request: req, error: gone})
      this.events.saveEnded?.({ok: false, request: req, error: gone})
    }
    for (const id of [...this.requests.keys()]) this.settleRequest(id, {ok: false, error: gone})
    this.events.closed?.(err)
  }
}

/** What the save took from its previous image, from the plan and the runtime's `written`. */
export function summarizeIncrement(plan: ImagePlan, w: Written): SaveIncrement {
  const fromPrevious = w.fromPrevious ?? []
  if (fromPrevious.length !== 0 && fromPrevious.length !== plan.writes.length) {
    throw protoError('PROTO_BAD_FIELD', `written: ${fromPrevious.length} fromPrevious counts for ${plan.writes.length} planned writes`)
  }
  let pages = 0
  for (const x of plan.writes) pages += Number((x.size + 4095n) / 4096n)
  const taken = fromPrevious.reduce((a, b) => a + b, 0)
  const holes = w.holes ?? 0
  if (taken + holes > pages) throw protoError('PROTO_BAD_FIELD', `written: ${taken} pages from the previous image and ${holes} holes, only ${pages} planned`)
  const out: SaveIncrement = {tracking: w.tracking ?? plan.request.tracking?.method ?? 'none', pagesWritten: pages - taken - holes,
    pagesFromPrevious: taken, reflinked: w.reflinked ?? 0, copied: w.copied ?? 0, holes,
    fromPrevious: fromPrevious.length ? fromPrevious : plan.writes.map(() => 0)}
  if (plan.fullBecause !== undefined) out.why = plan.fullBecause
  if (plan.request.previous && plan.fullBecause === undefined) out.previousGeneration = plan.request.previous.generation
  return out
}

function protoError(code: string, message: string): ImgdumpError {
  return new ImgdumpError('session', code, message)
}

function asTyped(err: unknown): ImgdumpError {
  return asTypedError(err, 'internal error while saving')
}
