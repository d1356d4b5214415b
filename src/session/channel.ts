/**
 * One end of a control connection (a Unix stream socket fd): reads protocol lines
 * asynchronously through Node (net.Socket over the fd) and sends with koffi's sendmsg on
 * the same fd, because only sendmsg can attach the output fd (SCM_RIGHTS) to the `plan`
 * line. Sends are synchronous and whole: a line is never interleaved with another.
 */
import net from 'node:net'
import {ImgdumpError} from '../errors.js'
import {sendAll} from '../native/socket.js'
import {LineReader} from './line-reader.js'
import {decodeAs, frameMessage, type PlannerMessage, type RuntimeMessage} from './protocol.js'

export interface ChannelHandlers {
  /** A decoded, validated message from the runtime. */
  message(m: RuntimeMessage): void
  /** A line that did not decode (bad JSON, bad field, unknown type): the connection stays up. */
  invalid(err: ImgdumpError): void
  /** The connection ended (EOF, framing error or local close); called once. */
  closed(err?: ImgdumpError): void
}

const RUNTIME_TYPES = ['hello', 'save', 'written', 'failed', 'refused'] as const

export class Channel {
  private readonly socket: net.Socket
  private readonly reader = new LineReader()
  private isClosed = false

  constructor(readonly fd: number, private readonly handlers: ChannelHandlers) {
    this.socket = new net.Socket({fd, readable: true, writable: false, allowHalfOpen: true})
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk))
    this.socket.on('end', () => this.close(this.reader.buffered > 0
      ? new ImgdumpError('session', 'PROTO_EOF', 'the runtime closed the connection in the middle of a message')
      : undefined))
    this.socket.on('error', (err) => this.close(new ImgdumpError('session', 'PROTO_IO', `control connection: ${err.message}`, {cause: err})))
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Send one message, optionally with a descriptor attached to its first byte. */
  send(m: PlannerMessage, passFd: number | null = null): void {
    if (this.isClosed) throw new ImgdumpError('session', 'PROTO_CLOSED', `cannot send "${m.t}": the control connection is closed`)
    sendAll(this.fd, frameMessage(m), passFd)
  }

  /** Close the connection (also closes the fd). */
  close(err?: ImgdumpError): void {
    if (this.isClosed) return
    this.isClosed = true
    this.socket.destroy()
    this.handlers.closed(err)
  }

  private onData(chunk: Buffer): void {
    let lines: string[]
    try {
      lines = this.reader.push(chunk)
    } catch (err) {
      // Framing is lost after an over-long line: nothing after it can be trusted.
      this.close(err as ImgdumpError)
      return
    }
    for (const line of lines) {
      if (this.isClosed) return
      let m: RuntimeMessage
      try {
        m = decodeAs(line, RUNTIME_TYPES)
      } catch (err) {
        if (err instanceof ImgdumpError) this.handlers.invalid(err)
        else throw err
        continue
      }
      this.handlers.message(m)
    }
  }
}
