/**
 * What the terminal status screen shows, as lines: the session (relay, transport, latency,
 * the inspector's address), each tunnel's public → local address with its connections, bytes
 * and rates, the last HTTP requests, and the last few events. A pure function of its model.
 */
import { formatBytes } from 'mport/cli'

/** One tunnel on the screen. */
export interface ScreenTunnel {
  name: string
  url?: string
  local: string
  online: boolean
  waitingFor?: string
  /** The refusal's code, when refused. */
  refused?: string
  /** A load-balancing group tunnel: its group, its members and how many take visitors, and this client's own health. */
  group?: { name: string, members: number, available: number, health?: 'healthy' | 'unhealthy' }
  connections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
  /** Bytes per second, visitor → service and back. */
  rateIn: number
  rateOut: number
}

/** One HTTP request on the screen. */
export interface ScreenRequest {
  /** Local time, `HH:MM:SS`. */
  time: string
  method: string
  url: string
  status?: number
  state: string
  durationMs?: number
}

/** Everything the status screen shows. */
export interface StatusModel {
  version: string
  relay: string
  /** How the client reaches the relay (tls, websocket, via a proxy…); shown when known. */
  transport?: string
  session: 'connecting' | 'online' | 'reconnecting' | 'stopped'
  /** Mux ping round trip to the relay, ms (0: not measured yet). */
  rttMs: number
  /** The inspector's page, when it runs. */
  inspectUrl?: string
  tunnels: ScreenTunnel[]
  requests: ScreenRequest[]
  /** The latest event lines (warnings, reconnects), oldest first. */
  events: string[]
}

const BOLD = '\x1b[1m'
const DIM = '\x1b[2m'
const GREEN = '\x1b[32m'
const YELLOW = '\x1b[33m'
const RED = '\x1b[31m'
const CYAN = '\x1b[36m'
const RESET = '\x1b[0m'

/** The screen's lines for `m` (with ANSI styles; TerminalScreen cuts them to the width). */
export function renderStatus (m: StatusModel): string[] {
  const lines: string[] = []
  lines.push(`${BOLD}mport-connect${RESET} ${m.version}${' '.repeat(8)}${DIM}(Ctrl+C to quit)${RESET}`, '')
  const sessionColor = m.session === 'online' ? GREEN : m.session === 'stopped' ? RED : YELLOW
  lines.push(row('Session', `${sessionColor}${m.session}${RESET}`))
  lines.push(row('Relay', m.relay))
  if (m.transport !== undefined) lines.push(row('Transport', m.transport))
  lines.push(row('Latency', m.rttMs > 0 ? `${m.rttMs < 10 ? m.rttMs.toFixed(1) : Math.round(m.rttMs)} ms` : '-'))
  if (m.inspectUrl !== undefined) lines.push(row('Inspector', m.inspectUrl))
  lines.push('', `${BOLD}Tunnels${RESET}`)
  const tunnelRows = m.tunnels.map(t => {
    const where = t.refused !== undefined ? `${RED}refused [${t.refused}]${RESET}` : t.waitingFor !== undefined ? `${YELLOW}waiting for ${t.waitingFor}${RESET}` : t.online && t.url !== undefined ? t.url : `${YELLOW}offline${RESET}`
    return [`${where} → ${t.local}${groupNote(t)}`, String(t.connections), String(t.totalConnections), bytes(t.bytesIn), bytes(t.bytesOut), `${bytes(t.rateIn)}/s`, `${bytes(t.rateOut)}/s`]
  })
  lines.push(...table(['', 'open', 'total', 'in', 'out', 'rate in', 'rate out'], tunnelRows))
  if (m.requests.length > 0 || m.inspectUrl !== undefined) {
    lines.push('', `${BOLD}HTTP requests${RESET}`)
    if (m.requests.length === 0) lines.push(`${DIM}none yet${RESET}`)
    for (const r of m.requests) {
      const status = r.status === undefined ? `${DIM}${r.state}${RESET}` : `${r.status >= 500 ? RED : r.status >= 400 ? YELLOW : r.status >= 300 ? CYAN : GREEN}${r.status}${RESET}`
      lines.push(`${r.time}  ${r.method.padEnd(7)} ${status}  ${(r.durationMs === undefined ? '' : `${r.durationMs} ms`).padStart(8)}  ${r.url}`)
    }
  }
  if (m.events.length > 0) lines.push('', `${BOLD}Events${RESET}`, ...m.events.map(e => `${DIM}${e}${RESET}`))
  return lines
}

function row (label: string, value: string): string {
  return `${label.padEnd(12)}${value}`
}

/** Columns padded to their widest cell (ANSI styles not counted); the first left-aligned, the rest right. */
function table (head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(visible(h), ...rows.map(r => visible(r[i]!))))
  const fmt = (cells: string[]): string => cells.map((c, i) => i === 0 ? c + ' '.repeat(widths[i]! - visible(c)) : ' '.repeat(widths[i]! - visible(c)) + c).join('  ')
  return [`${DIM}${fmt(head)}${RESET}`, ...rows.map(fmt)]
}

function visible (s: string): number {
  // eslint-disable-next-line no-control-regex -- ANSI style sequences start with ESC
  return s.replace(/\x1b\[[0-9;]*m/g, '').length
}

function bytes (n: number): string {
  return formatBytes(Math.round(n))
}

/** ` [group web: 2/3 up]` for a group tunnel (members taking visitors / members), and `unhealthy` when its own check failed. */
function groupNote (t: ScreenTunnel): string {
  const g = t.group
  if (g === undefined) return ''
  const sick = g.health === 'unhealthy' ? `, ${RED}unhealthy${RESET}` : ''
  return ` ${DIM}[group ${g.name}: ${g.available}/${g.members} up${RESET}${sick}${DIM}]${RESET}`
}
