/**
 * The per-user sessions registry: one directory (mode 0700) holding, for every running
 * `imgdump run`, a JSON record `<name>.json` and the orchestrator's Unix server socket
 * `<name>.sock` that `imgdump save` connects to. Records of dead processes are stale and
 * removed by whoever lists them (an orchestrator killed with SIGKILL cannot clean up).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ImgdumpError, ioError} from '../errors.js'
import {processAlive} from '../native/process-alive.js'

export interface LastSave {
  path: string
  bytes: number
  pages: number
  ms: number
  /** ISO time the save finished. */
  at: string
}

export interface SessionRecord {
  name: string
  /** PID of the runtime (the same across IMGDUMP_EXEC). */
  pid: number
  /** PID of the `imgdump run` process serving the session. */
  orchestratorPid: number
  /** The runtime as given on the command line, and its arguments. */
  runtime: string
  args: string[]
  /** ISO start time. */
  started: string
  socket: string
  /** The runtime has said hello on its control socket (it is linked with libimgdump). */
  connected: boolean
  /** The executable the runtime reports (after IMGDUMP_EXEC: the image). */
  exe?: string
  /** Heap bytes in use ([base, break) plus regions) at the last save. */
  heapBytes?: number
  lastSave?: LastSave
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

function checkSessionName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new ImgdumpError('usage', 'BAD_SESSION_NAME', `bad session name ${JSON.stringify(name)}`, {
      hint: 'use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    })
  }
  return name
}

/** $XDG_RUNTIME_DIR/imgdump, or /tmp/imgdump-<uid>; created 0700 and checked to be ours. */
export function sessionDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR
  const uid = process.getuid?.() ?? 0
  const dir = xdg && path.isAbsolute(xdg) && fs.existsSync(xdg) ? path.join(xdg, 'imgdump') : path.join(os.tmpdir(), `imgdump-${uid}`)
  try {
    fs.mkdirSync(dir, {mode: 0o700})
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err, dir, 'create')
  }
  const st = fs.lstatSync(dir)
  // Another user could pre-create /tmp/imgdump-<uid> to read our sockets: refuse it.
  if (!st.isDirectory() || st.uid !== uid) {
    throw new ImgdumpError('session', 'SESSION_DIR_UNSAFE', `${dir} is not a directory owned by you`, {
      hint: `remove it, or set XDG_RUNTIME_DIR to a private directory`,
    })
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700)
  return dir
}

const recordPath = (dir: string, name: string) => path.join(dir, `${name}.json`)
export const socketPath = (dir: string, name: string) => path.join(dir, `${name}.sock`)

/** Write (or replace) a record atomically. */
export function writeRecord(dir: string, rec: SessionRecord): void {
  const file = recordPath(dir, rec.name)
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', {mode: 0o600})
  fs.renameSync(tmp, file)
}

export function removeRecord(dir: string, name: string): void {
  fs.rmSync(recordPath(dir, name), {force: true})
  fs.rmSync(socketPath(dir, name), {force: true})
}


function readRecord(file: string): SessionRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as SessionRecord
    return typeof r.name === 'string' && Number.isInteger(r.pid) && Number.isInteger(r.orchestratorPid) ? r : undefined
  } catch {
    return undefined
  }
}

/**
 * Reserve a session name by creating its record exclusively (so two `imgdump run` started
 * at once cannot take the same name): `wanted` as given, or `<base>-1`, `<base>-2`, …
 * A record of a dead session does not hold its name.
 */
export function claimName(dir: string, wanted: string | undefined, base: string, placeholder: Omit<SessionRecord, 'name' | 'socket'>): string {
  const tryClaim = (name: string): boolean => {
    const rec: SessionRecord = {...placeholder, name, socket: socketPath(dir, name)}
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(recordPath(dir, name), JSON.stringify(rec, null, 2) + '\n', {mode: 0o600, flag: 'wx'})
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err, recordPath(dir, name), 'create')
        listSessions(dir) // removes the record if its session is dead
      }
    }
    return false
  }
  if (wanted !== undefined) {
    if (tryClaim(checkSessionName(wanted))) return wanted
    throw new ImgdumpError('usage', 'SESSION_EXISTS', `a session named ${wanted} is already running`, {hint: 'choose another --name'})
  }
  const stem = base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50) || 'runtime'
  for (let n = 1; ; n++) if (tryClaim(`${stem}-${n}`)) return `${stem}-${n}`
}

/** Live sessions, sorted by start time; stale records (dead orchestrator or runtime) are removed. */
export function listSessions(dir = sessionDir()): SessionRecord[] {
  const out: SessionRecord[] = []
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.endsWith('.json')) continue
    const rec = readRecord(path.join(dir, entry))
    if (!rec) continue
    if (processAlive(rec.orchestratorPid) && processAlive(rec.pid)) out.push(rec)
    else removeRecord(dir, rec.name)
  }
  return out.sort((a, b) => a.started.localeCompare(b.started))
}

/** The live session named `key`, or whose runtime or orchestrator PID is `key`. */
export function findSession(key: string, dir = sessionDir()): SessionRecord {
  const sessions = listSessions(dir)
  const byName = sessions.find((s) => s.name === key)
  if (byName) return byName
  if (/^[0-9]+$/.test(key)) {
    const pid = Number(key)
    const byPid = sessions.find((s) => s.pid === pid || s.orchestratorPid === pid)
    if (byPid) return byPid
  }
  const names = sessions.map((s) => `${s.name} (pid ${s.pid})`).join(', ')
  throw new ImgdumpError('session', 'SESSION_UNKNOWN', `no running session named or with pid ${JSON.stringify(key)}`, {
    value: key,
    hint: names ? `running sessions: ${names}` : 'no session is running; start one with `imgdump run -- <runtime>`',
  })
}
