/**
 * `imgdump run`: start a runtime with a control socket (docs/protocol.md, orchestrated
 * mode), serve its saves for as long as it lives, register the session so that
 * `imgdump save` from another terminal can reach it, pass signals on, and return the
 * runtime's exit status. The runtime owns the terminal (stdio inherited).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {constants as osConstants} from 'node:os'
import {isatty} from 'node:tty'
import type {SaveIncrement, SaveMode} from '../image/save-types.js'
import {ImgdumpError} from '../errors.js'
import {closeFd, socketPair} from '../native/socket.js'
import {loadImageSide, type ImageSide} from './image-side.js'
import {PlannerSession, type SaveOutcome} from './planner-session.js'
import {claimName, removeRecord, sessionDir, socketPath, type SessionRecord, writeRecord} from './registry.js'
import {encodeLine, onLines, SESSION_SOCKET_VERSION, type SavedIncrement, type SessionReply} from './save-client.js'

export interface RunOptions {
  runtime: string
  args: string[]
  name?: string
  imageSide?: () => Promise<ImageSide>
  /** Embedding (tests): give the runtime pipes instead of this process's stdio, and see it. */
  pipeStdio?: boolean
  spawned?: (child: ChildProcess) => void
}

export interface RunResult {
  name: string
  pid: number
  /** The runtime's exit code, or 128 + signal number when a signal killed it. */
  status: number
  signal: string | null
  saves: number
}

/** The fd number the runtime finds its control socket at (IMGDUMP_CONTROL_FD). */
export const CONTROL_FD = 3

/**
 * Signals passed on to the runtime. Those a terminal sends to the whole foreground process
 * group (which contains the runtime too) are passed on only without a terminal, or the
 * runtime would get each Ctrl-C twice.
 */
const ALWAYS_FORWARDED = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGCONT'] as const
const TERMINAL_SIGNALS = ['SIGINT', 'SIGQUIT', 'SIGWINCH'] as const

export async function runSession(opts: RunOptions): Promise<RunResult> {
  const dir = sessionDir()
  const started = new Date().toISOString()
  const name = claimName(dir, opts.name, path.basename(opts.runtime), {
    pid: process.pid, orchestratorPid: process.pid, runtime: opts.runtime, args: opts.args, started, connected: false,
  })
  let parentFd: number, childFd: number
  try {
    [parentFd, childFd] = socketPair(true)
  } catch (err) {
    removeRecord(dir, name)
    throw err
  }
  const target: {pid?: number} = {}
  const stopSignals = forwardSignals(target)
  const child = spawn(opts.runtime, opts.args, {
    // The child end becomes fd 3 via dup2, which leaves it without close-on-exec.
    stdio: [...(opts.pipeStdio ? ['pipe', 'pipe', 'pipe'] as const : ['inherit', 'inherit', 'inherit'] as const), childFd],
    env: {...process.env, IMGDUMP_CONTROL_FD: String(CONTROL_FD), IMGDUMP_SESSION: name},
  })
  closeFd(childFd)
  const spawned = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    child.once('spawn', () => resolve(null))
    child.once('error', (err) => resolve(err))
  })
  if (spawned) {
    stopSignals()
    closeFd(parentFd)
    removeRecord(dir, name)
    throw new ImgdumpError('io', `IO_${spawned.code ?? 'SPAWN'}`, `cannot start ${opts.runtime}: ${spawned.code === 'ENOENT' ? 'no such file or command' : spawned.message}`)
  }
  target.pid = child.pid
  opts.spawned?.(child)
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) =>
    child.once('exit', (code, signal) => resolve({code, signal})))
  const served = serveSession(dir, {
    name, pid: child.pid!, orchestratorPid: process.pid, runtime: opts.runtime, args: opts.args,
    started, socket: socketPath(dir, name), connected: false,
  }, opts, parentFd)
  const {code, signal} = await exited
  stopSignals()
  const saves = served.stop()
  const status = signal ? 128 + (osConstants.signals[signal] ?? 0) : code ?? 1
  return {name, pid: child.pid!, status, signal, saves}
}

/**
 * Installed before the runtime is spawned: a Ctrl-C right at start must not kill the
 * orchestrator (the runtime would lose its planner). Signals before `target.pid` is set are
 * dropped (there is no runtime yet to pass them to).
 */
function forwardSignals(target: {pid?: number}): () => void {
  // isatty(0), not process.stdin.isTTY: creating process.stdin would open the runtime's terminal.
  const onTerminal = isatty(0)
  const names: NodeJS.Signals[] = [...ALWAYS_FORWARDED, ...(onTerminal ? [] : TERMINAL_SIGNALS)]
  const handler = (sig: NodeJS.Signals) => {
    if (target.pid === undefined) return
    try {
      process.kill(target.pid, sig)
    } catch {
      // already gone: its exit is on its way
    }
  }
  // With a terminal, Ctrl-C reaches the runtime directly; the orchestrator must only survive it.
  const ignore = () => {}
  for (const s of names) process.on(s, handler)
  if (onTerminal) for (const s of TERMINAL_SIGNALS) process.on(s, ignore)
  return () => {
    for (const s of names) process.off(s, handler)
    for (const s of TERMINAL_SIGNALS) process.off(s, ignore)
  }
}

/** Planner on the control socket + session socket server + registry record. */
function serveSession(dir: string, record: SessionRecord, opts: RunOptions, parentFd: number): {stop(): number} {
  let saves = 0
  const save = (rec: SessionRecord) => {
    try {
      writeRecord(dir, rec)
    } catch {
      // the registry is a convenience; the session keeps running without it
    }
  }
  let progress: {timer: NodeJS.Timeout; client: net.Socket} | undefined
  let activeClient: net.Socket | undefined
  const imageSide = opts.imageSide ?? loadImageSide
  // Load the image side now, while the runtime starts, so the first save does not pay for it.
  imageSide().catch(() => undefined)
  const planner = new PlannerSession(parentFd, imageSide, {
    hello(h) {
      record.connected = true
      record.exe = h.exe
      save(record)
    },
    writing(plan, pending) {
      if (!activeClient) return
      const client = activeClient
      const total = Number(plan.fileSize)
      const tick = () => fs.fstat(pending.fd, (err, st) => {
        if (!err && !client.destroyed) client.write(encodeLine({t: 'status', state: 'writing', connected: true, bytes: Math.min(st.blocks * 512, total), total}))
      })
      progress = {timer: setInterval(tick, 100), client}
    },
    saveEnded(outcome: SaveOutcome) {
      if (progress) clearInterval(progress.timer)
      progress = undefined
      if (!outcome.ok) return
      saves++
      const {request, result} = outcome
      record.heapBytes = Number(request.heap.brk - request.heap.base + request.regions.reduce((s, r) => s + r.size, 0n))
      record.lastSave = {path: result.path, bytes: Number(result.bytes), pages: result.pages, ms: result.ms, at: new Date().toISOString()}
      save(record)
    },
  })
  const server = net.createServer((client) => {
    onLines(client, (o) => {
      if (o.t !== 'save') return
      activeClient = client
      handleSaveAsk(planner, o, client).finally(() => {
        if (activeClient === client) activeClient = undefined
      })
    }, () => {})
    client.on('error', () => {})
  })
  fs.rmSync(record.socket, {force: true})
  server.listen(record.socket, () => {
    try {
      fs.chmodSync(record.socket, 0o600)
    } catch {
      // the directory is 0700 already
    }
  })
  server.unref()
  save(record)
  return {
    stop() {
      if (progress) clearInterval(progress.timer)
      server.close()
      planner.close()
      removeRecord(dir, record.name)
      return saves
    },
  }
}

const MODES: readonly string[] = ['continue', 'exec', 'exit']

async function handleSaveAsk(planner: PlannerSession, o: Record<string, unknown>, client: net.Socket): Promise<void> {
  const reply = (m: SessionReply) => {
    if (!client.destroyed) client.write(encodeLine(m))
  }
  if (o.v !== SESSION_SOCKET_VERSION || typeof o.path !== 'string' || !path.isAbsolute(o.path) || !MODES.includes(o.mode as string)) {
    reply({t: 'error', phase: 'session', code: 'SESSION_PROTO', message: 'malformed save request (is this imgdump of the same version as the session?)'})
    return
  }
  if (planner.busy) {
    reply({t: 'error', phase: 'save', code: 'SAVE_BUSY', message: 'another save of this session is in progress', hint: 'wait for it to finish and try again'})
    return
  }
  if (planner.channel.closed) {
    reply({t: 'error', phase: 'session', code: 'RUNTIME_GONE', message: 'the runtime closed its control connection'})
    return
  }
  const {id, outcome} = planner.requestSave(o.path, o.mode as SaveMode)
  reply({t: 'status', state: 'waiting', connected: planner.connected})
  // The requester went away (Ctrl-C): if the runtime starts the save later, it is cancelled.
  client.on('close', () => planner.cancelRequest(id))
  const result = await outcome
  if (result.ok) {
    const r = result.result
    reply({t: 'saved', path: r.path, bytes: Number(r.bytes), pages: r.pages, ms: r.ms, ...(r.increment ? {increment: wireIncrement(r.increment)} : {})})
  } else {
    const e = result.error
    reply({t: 'error', phase: e.phase, code: e.code, message: e.message, ...(e.hint ? {hint: e.hint} : {})})
  }
  client.end()
}

/** SaveIncrement as JSON (the previous generation as a number). */
function wireIncrement(i: SaveIncrement): SavedIncrement {
  const {previousGeneration, fromPrevious: _perWrite, ...rest} = i
  return previousGeneration === undefined ? rest : {...rest, previousGeneration: Number(previousGeneration)}
}
