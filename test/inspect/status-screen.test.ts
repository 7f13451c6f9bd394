/**
 * The terminal status screen's parts on a manual clock: whole frames in one write, nothing
 * written when nothing changed, at most one frame per interval with the latest content, lines
 * cut to the width, the terminal restored on stop; the rendered lines; the rate meter. The
 * screen in a real terminal (tmux) is in status-tmux.test.ts.
 */
import t from 'tap'
import { RateMeter } from '../../packages/mport-connect/src/status/rate-meter.js'
import { renderStatus, type StatusModel } from '../../packages/mport-connect/src/status/status-screen.js'
import { TerminalScreen } from '../../packages/mport-connect/src/status/terminal-screen.js'
import { ManualClock } from '../helpers/manual-clock.js'

const plain = (s: string): string => s.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '') // eslint-disable-line no-control-regex -- ANSI sequences

function fakeTty (columns = 40, rows = 10): { writes: string[], columns: number, rows: number, write (s: string): boolean } {
  return { writes: [], columns, rows, write (s: string) { this.writes.push(s); return true } }
}

t.test('frames: whole, only when changed, at most one per interval, latest wins', async t => {
  const clock = new ManualClock(0)
  const tty = fakeTty()
  const screen = new TerminalScreen(tty, { minIntervalMs: 250, setTimer: clock.setTimer, now: clock.now })
  screen.start()
  t.same(tty.writes, ['\x1b[?1049h\x1b[?25l'], 'alternate screen, cursor hidden')
  screen.show(['hello', 'world'])
  t.equal(tty.writes.length, 2, 'the first frame at once')
  t.equal(tty.writes[1], '\x1b[Hhello\x1b[K\r\nworld\x1b[K\x1b[J', 'home, each line cleared to its end, the rest cleared: one write')
  clock.advance(300)
  screen.show(['hello', 'world'])
  t.equal(tty.writes.length, 2, 'an unchanged frame is not written')
  screen.show(['a'])
  t.equal(tty.writes.length, 3)
  screen.show(['b'])
  screen.show(['c'])
  t.equal(tty.writes.length, 3, 'frames within the interval wait')
  clock.advance(249)
  t.equal(tty.writes.length, 3)
  clock.advance(1)
  t.equal(tty.writes.length, 4, 'one frame when the interval is over')
  t.equal(plain(tty.writes[3]!), 'c', 'with the latest lines')
  screen.show(['x'.repeat(100), ...Array.from({ length: 20 }, (_, i) => `line ${i}`)])
  clock.advance(250)
  const frame = plain(tty.writes.at(-1)!).split('\r\n')
  t.equal(frame[0]!.length, 40, 'cut to the width')
  t.equal(frame.length, 10, 'cut to the height')
  screen.stop()
  t.equal(tty.writes.at(-1), '\x1b[?25h\x1b[?1049l', 'the terminal restored')
  screen.show(['after'])
  clock.advance(1000)
  t.equal(tty.writes.at(-1), '\x1b[?25h\x1b[?1049l', 'nothing drawn after stop')
})

t.test('rendered lines: session, tunnels, requests, events', async t => {
  const model: StatusModel = {
    version: '0.1.0',
    relay: 'relay.example:7835',
    transport: 'tls',
    session: 'online',
    rttMs: 12.4,
    inspectUrl: 'http://127.0.0.1:4040/',
    tunnels: [
      { name: 'web', url: 'https://shop.tunnels.test', local: '127.0.0.1:3000', online: true, connections: 2, totalConnections: 9, bytesIn: 2048, bytesOut: 3 * 1024 * 1024, rateIn: 512, rateOut: 1536 },
      { name: 'ssh', local: '127.0.0.1:22', online: false, waitingFor: 'port 2222', connections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0 },
      { name: 'api', url: 'tcp://relay.example:24001', local: '127.0.0.1:8080', online: true, group: { name: 'api', members: 3, available: 2, health: 'unhealthy' }, connections: 0, totalConnections: 4, bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0 },
    ],
    requests: [{ time: '10:00:01', method: 'POST', url: '/api/items', status: 201, state: 'complete', durationMs: 14 }, { time: '10:00:00', method: 'GET', url: '/slow', state: 'pending' }],
    events: ['reconnecting in 0.5 s'],
  }
  const lines = renderStatus(model).map(plain)
  const text = lines.join('\n')
  t.match(text, /^Session {5}online$/m)
  t.match(text, /^Relay {7}relay\.example:7835$/m)
  t.match(text, /^Transport {3}tls$/m)
  t.match(text, /^Latency {5}12 ms$/m)
  t.match(text, /^Inspector {3}http:\/\/127\.0\.0\.1:4040\/$/m)
  t.match(text, /https:\/\/shop\.tunnels\.test → 127\.0\.0\.1:3000 +2 +9 +2\.0 KiB +3\.0 MiB +512 B\/s +1\.5 KiB\/s/)
  t.match(text, /waiting for port 2222 → 127\.0\.0\.1:22/)
  t.match(text, /tcp:\/\/relay\.example:24001 → 127\.0\.0\.1:8080 \[group api: 2\/3 up, unhealthy\]/, 'a group tunnel: members taking visitors of all, and its own health')
  t.match(text, /10:00:01 +POST +201 +14 ms +\/api\/items/)
  t.match(text, /10:00:00 +GET +pending +\/slow/)
  t.match(text, /Events\nreconnecting in 0\.5 s/)
  const noTransport = renderStatus({ ...model, transport: undefined as unknown as string }).map(plain).join('\n')
  t.notMatch(noTransport, /Transport/, 'the transport line only when the client says')
})

t.test('rates over a window', async t => {
  const m = new RateMeter(5000)
  t.equal(m.sample(0, 0), 0)
  t.equal(m.sample(1000, 1000), 1000)
  t.equal(m.sample(2000, 3000), 1500)
  for (let s = 3; s <= 10; s++) m.sample(s * 1000, 3000)
  t.equal(m.sample(11_000, 3000), 0, 'no growth over the window: 0 B/s')
})
