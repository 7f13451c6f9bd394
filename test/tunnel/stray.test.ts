/**
 * Stray frames reach the relay's and the client's owners as `stray` events, and the session
 * goes on: a real relay, a real TLS connection that passed the handshake, and raw frames
 * written into it for streams that do not exist.
 */
import tls from 'node:tls'
import t from 'tap'
import { Session, encodeHeader, FrameType, type Relay } from '../../src/index.js'
import type { StrayFrame } from '../../src/mux/stray.js'
import { handshakeRelay } from '../../src/tunnel/client-handshake.js'
import type { ClientInfo } from '../../src/tunnel/relay-events.js'
import { createPrinter, strayReporter } from '../../src/cli/output.js'
import { Writable } from 'node:stream'
import { startRelay, TOKEN } from '../helpers/tunnel.js'
import { nextEvent, withTimeout } from '../helpers/wait.js'

async function authenticated (relay: Relay): Promise<{ socket: tls.TLSSocket, session: Session }> {
  const socket = await withTimeout(new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: relay.address.port, ALPNProtocols: ['mport/1'], rejectUnauthorized: false }, () => resolve(s))
    s.once('error', reject)
  }), { what: 'a TLS connection to the relay' })
  const session = new Session(socket, { client: true })
  await handshakeRelay(session, socket, { token: TOKEN, lease: undefined, timeout: 5_000 })
  return { socket, session }
}

t.test('the relay reports a client\'s stray frames and keeps the session', async t => {
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const { socket, session } = await authenticated(relay)
  t.teardown(() => session.destroy())

  const seen: Array<{ client: ClientInfo, frame: StrayFrame }> = []
  relay.on('stray', (client, frame) => seen.push({ client, frame }))
  // A window update for an id the client never opened (odd: the client's own parity), then a
  // Data frame for a relay-side id the relay never opened (even).
  const first = nextEvent<[ClientInfo, StrayFrame]>(relay, 'stray', { what: 'a stray event for the window update' })
  socket.write(encodeHeader({ type: FrameType.WindowUpdate, flags: 0, streamId: 1001, length: 4096 }))
  await first
  const second = nextEvent<[ClientInfo, StrayFrame]>(relay, 'stray', { what: 'a stray event for the Data frame' })
  socket.write(Buffer.concat([encodeHeader({ type: FrameType.Data, flags: 0, streamId: 2000, length: 3 }), Buffer.from('abc')]))
  await second

  t.equal(seen.length, 2, 'two stray frames reported')
  t.match(seen[0], { frame: { reason: 'never-opened', reset: false, header: { type: FrameType.WindowUpdate, streamId: 1001 } } })
  t.match(seen[1], { frame: { reason: 'never-opened', reset: true, header: { type: FrameType.Data, streamId: 2000, length: 3 } } })
  t.match(seen[0]!.client, { id: /^c\d+$/, principal: { name: String } }, 'with the client that sent it')
  t.notOk(session.closed, 'the client\'s session is still open')
  const rtt = await withTimeout(session.ping(), { what: 'a ping after the stray frames' })
  t.ok(rtt >= 0, 'and answers pings')
})

t.test('stray lines are rate-limited and count what they held back', async t => {
  let now = 0
  const lines: string[] = []
  const out = createPrinter(false, new Writable({ write (c: Buffer, _e, cb) { lines.push(String(c).trim()); cb() } }), undefined, { level: 'debug' }) // stray lines are debug
  const report = strayReporter(out, 10_000, () => now)
  const frame: StrayFrame = { header: { type: FrameType.Data, flags: 0, streamId: 7, length: 5 }, reason: 'closed', reset: false }
  report('client c1', frame)
  for (let i = 0; i < 4; i++) { now += 1_000; report('client c1', frame) }
  t.equal(lines.length, 1, 'one line in the first 10 s')
  t.match(lines[0], /client c1: dropped a frame for a closed stream \(stream 7, 5 B\)$/)
  now = 10_000
  report('client c1', { ...frame, reason: 'never-opened', reset: true })
  t.equal(lines.length, 2, 'the next line after the interval')
  t.match(lines[1], /a stream never opened .*answered with a reset \(and 4 more since the last line\)$/)
})
