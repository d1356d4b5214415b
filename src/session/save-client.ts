/**
 * The session socket: how `imgdump save` asks a running `imgdump run` for a save
 * (docs/protocol.md, "Session socket"). Newline-delimited JSON between two imgdump
 * processes of the same version; sizes are JSON numbers here.
 *   client → orchestrator: {"t":"save","v":1,"path":"/abs","mode":"continue|exec|exit"}
 *   orchestrator → client: {"t":"status","state":"waiting|writing","connected":bool,"bytes"?,"total"?}…
 *                          then {"t":"saved","path","bytes","pages","ms"}
 *                          or   {"t":"error","phase","code","message","hint"?}
 */
import net from 'node:net'
import type {SaveIncrement, SaveMode} from '../image/save-types.js'
import {type ErrorPhase, ImgdumpError} from '../errors.js'
import {EXIT_CODES} from '../exit-codes.js'
import {LineReader} from './line-reader.js'

export const SESSION_SOCKET_VERSION = 1

export interface SaveAsk {t: 'save'; v: number; path: string; mode: SaveMode}
export interface SaveStatus {t: 'status'; state: 'waiting' | 'writing'; connected: boolean; bytes?: number; total?: number}
/** What an incremental save took from its previous image: SaveIncrement as JSON (the
 * generation a number, the per-write counts left out). */
export type SavedIncrement = Omit<SaveIncrement, 'previousGeneration' | 'fromPrevious'> & {previousGeneration?: number}

export interface Saved {t: 'saved'; path: string; bytes: number; pages: number; ms: number; increment?: SavedIncrement}
export interface SaveFailed {t: 'error'; phase: ErrorPhase; code: string; message: string; hint?: string}
export type SessionReply = SaveStatus | Saved | SaveFailed

export function encodeLine(m: SaveAsk | SessionReply): string {
  return JSON.stringify(m) + '\n'
}

/** Read NDJSON objects from a stream socket, one callback per object. */
export function onLines(sock: net.Socket, fn: (o: Record<string, unknown>) => void, bad: (err: ImgdumpError) => void): void {
  const reader = new LineReader()
  sock.on('data', (chunk: Buffer) => {
    try {
      for (const line of reader.push(chunk)) {
        const o = JSON.parse(line)
        if (typeof o !== 'object' || o === null || typeof o.t !== 'string') throw new Error('not a message')
        fn(o)
      }
    } catch (err) {
      bad(err instanceof ImgdumpError ? err : new ImgdumpError('session', 'SESSION_PROTO', `bad message on the session socket: ${(err as Error).message}`))
      sock.destroy()
    }
  })
}

/** The typed error a `{"t":"error"}` reply stands for (its phase picks the exit code). */
function replyError(m: SaveFailed): ImgdumpError {
  const phase: ErrorPhase = Object.hasOwn(EXIT_CODES, m.phase) && m.phase !== ('ok' as string) ? m.phase : 'save'
  return new ImgdumpError(phase, String(m.code), String(m.message), m.hint ? {hint: String(m.hint)} : {})
}

/**
 * Ask the session listening on `socket` to save to `path`; `status` sees progress.
 * Resolves when the image is written; rejects with a typed error otherwise.
 */
export function requestSessionSave(socket: string, name: string, path: string, mode: SaveMode,
  status: (s: SaveStatus) => void = () => {}): Promise<Saved> {
  return new Promise((resolve, reject) => {
    let settled = false
    const finish = (err: ImgdumpError | null, saved?: Saved) => {
      if (settled) return
      settled = true
      sock.destroy()
      if (err) reject(err)
      else resolve(saved!)
    }
    const sock = net.connect(socket)
    sock.on('connect', () => sock.write(encodeLine({t: 'save', v: SESSION_SOCKET_VERSION, path, mode})))
    sock.on('error', (err: NodeJS.ErrnoException) => finish(new ImgdumpError('session', 'SESSION_UNREACHABLE',
      `cannot reach session ${name}: ${err.code ?? err.message}`, {hint: 'the session may have just ended; see `imgdump sessions`'})))
    sock.on('close', () => finish(new ImgdumpError('session', 'SESSION_GONE', `session ${name} ended before the save finished`)))
    onLines(sock, (o) => {
      if (o.t === 'status') status(o as unknown as SaveStatus)
      else if (o.t === 'saved') finish(null, o as unknown as Saved)
      else if (o.t === 'error') finish(replyError(o as unknown as SaveFailed))
    }, (err) => finish(err))
  })
}
