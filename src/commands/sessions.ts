import {BaseCommand} from '../base-command.js'
import {listSessions, type SessionRecord} from '../session/registry.js'
import {formatBytes} from '../session/format.js'

export interface SessionsResult {
  sessions: SessionRecord[]
}

export default class Sessions extends BaseCommand {
  static override description = `List the running sessions started with \`imgdump run\`

Shows each session's name, the runtime's PID, the runtime, its heap size and its last save
(both known after a first save). Records of sessions that died without cleaning up are removed.`

  static override examples = ['<%= config.bin %> sessions', '<%= config.bin %> sessions --json']

  async run(): Promise<SessionsResult> {
    await this.parse(Sessions)
    const sessions = listSessions()
    if (!this.jsonEnabled()) this.log(renderTable(sessions))
    return {sessions}
  }
}

function renderTable(sessions: SessionRecord[]): string {
  if (sessions.length === 0) return 'no running sessions'
  const rows = [['NAME', 'PID', 'RUNTIME', 'HEAP', 'LAST SAVE']]
  for (const s of sessions) {
    const last = s.lastSave ? `${s.lastSave.path} (${formatBytes(s.lastSave.bytes)}, ${s.lastSave.at.replace('T', ' ').slice(0, 19)})` : '-'
    rows.push([s.name, String(s.pid), s.runtime, s.heapBytes === undefined ? '-' : formatBytes(s.heapBytes), last])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}
