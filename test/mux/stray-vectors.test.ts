// spec/vectors/stray-frames.json against a real Session: each case's frames go in from a raw
// pipe end, and what the session writes back in answer must be the case's `reply`, byte for
// byte; its stats and 'stray' event must classify the frame as the case says. Also the id rule
// itself (neverOpened) on its edges, as PROTOCOL.md "Frames for unknown streams" states it.
import { readFileSync } from 'node:fs'
import t from 'tap'
import type { MuxConfig } from '../../src/mux/config.js'
import { FrameType } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import { neverOpened, type StrayFrame } from '../../src/mux/stray.js'
import { duplexPair } from '../helpers/duplex-pair.js'
import { FrameLog } from '../helpers/frame-log.js'
import { naiveDecode, naiveEncode, NAIVE_HEADER_LENGTH, type NaiveFrameHeader } from '../helpers/naive-codec.js'
import { nextEvent, turns, waitFor } from '../helpers/wait.js'

interface StrayCase {
  name: string
  receiver: 'client' | 'server'
  config?: Partial<MuxConfig>
  opens?: number
  setup: string
  hex: string
  header: NaiveFrameHeader
  stray: 'closed' | 'never-opened' | null
  reply: string
  code?: string
}

const file = JSON.parse(readFileSync(new URL('../../spec/vectors/stray-frames.json', import.meta.url), 'utf8')) as { cases: StrayCase[] }
const cases = file.cases
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const pingSyn = (value: number): Buffer => Buffer.from(naiveEncode({ type: FrameType.Ping, flags: 1, streamId: 0, length: value }))

t.test('the vector file is well-formed (checked with the naive codec)', async t => {
  t.ok(cases.length >= 10, `${cases.length} cases`)
  t.equal(new Set(cases.map(c => c.name)).size, cases.length, 'names are unique')
  for (const c of cases) {
    const bytes = Buffer.from(c.hex, 'hex')
    t.equal(hex(naiveEncode(c.header)), c.hex.slice(0, 2 * NAIVE_HEADER_LENGTH), `${c.name}: header encodes to the start of hex`)
    const body = bytes.length - NAIVE_HEADER_LENGTH
    const wholeData = c.header.type === FrameType.Data && c.code !== 'MPORT_ERR_FRAME_TOO_LARGE'
    t.equal(body, wholeData ? c.header.length : 0, `${c.name}: ${wholeData ? 'the whole payload follows' : 'nothing follows the header'}`)
    t.equal(Buffer.from(c.reply, 'hex').length % NAIVE_HEADER_LENGTH, 0, `${c.name}: reply is whole headers`)
    t.ok(c.stray === null || c.code === undefined, `${c.name}: a stray frame is never fatal`)
  }
  const kinds = new Set(cases.map(c => `${c.receiver}/${c.stray ?? (c.code === undefined ? 'usual' : 'fatal')}`))
  for (const k of ['server/closed', 'server/never-opened', 'client/closed', 'client/never-opened', 'server/usual', 'server/fatal']) {
    t.ok(kinds.has(k), `covers ${k}`)
  }
  t.ok(cases.some(c => c.stray === 'never-opened' && c.header.type === FrameType.Data && c.reply !== ''), 'covers an answered never-opened Data frame')
})

/** Headers of `bytes` (replies carry no payloads) as hex, one per frame. */
function headersOf (bytes: string): string[] {
  const b = Buffer.from(bytes, 'hex')
  const out: string[] = []
  for (let off = 0; off < b.length; off += NAIVE_HEADER_LENGTH) out.push(hex(naiveEncode(naiveDecode(b, off))))
  return out
}

for (const c of cases) {
  t.test(c.name, async t => {
    const [a, raw] = duplexPair()
    const session = new Session(a, { client: c.receiver === 'client', windowAutoTuning: false, keepAliveInterval: 0, ...c.config })
    const log = new FrameLog(raw)
    const strays: StrayFrame[] = []
    session.on('stray', f => strays.push(f))
    t.teardown(() => {
      session.destroy()
      raw.destroy()
    })
    const acked = (value: number): Promise<void> => waitFor(() => log.pingAcks().includes(value), { what: `the ACK of ping ${value}` })

    for (let i = 0; i < (c.opens ?? 0); i++) {
      const s = session.open()
      s.on('error', () => {})
      await turns(2) // the SYN goes out
      s.destroy() // RST
    }
    raw.write(Buffer.concat([Buffer.from(c.setup, 'hex'), pingSyn(1)]))
    await acked(1)
    const mark = log.frames.length
    const before = session.stats
    const strayMark = strays.length

    if (c.code !== undefined) {
      const closed = nextEvent<[Error | undefined]>(session, 'close', { what: `the session to end with ${c.code}` })
      raw.write(Buffer.from(c.hex, 'hex'))
      const [err] = await closed
      t.match(err, { code: c.code }, `ends with ${c.code}`)
      await waitFor(() => log.ended, { what: 'the connection to end' })
    } else {
      raw.write(Buffer.concat([Buffer.from(c.hex, 'hex'), pingSyn(2)]))
      await acked(2)
      t.equal(session.closed, false, 'the session keeps serving')
    }
    const answered = log.frames.slice(mark).filter(h => !(h.type === FrameType.Ping && h.length === 2))
    t.same(answered.map(h => hex(naiveEncode(h))), headersOf(c.reply), `reply: ${c.reply === '' ? 'nothing' : c.reply}`)

    const after = session.stats
    const isData = c.header.type === FrameType.Data
    const reset = c.reply !== '' && c.stray !== null
    t.same({
      strayClosed: after.strayClosed - before.strayClosed,
      strayNeverOpened: after.strayNeverOpened - before.strayNeverOpened,
      strayBytes: after.strayBytes - before.strayBytes,
      strayResets: after.strayResets - before.strayResets,
    }, {
      strayClosed: c.stray === 'closed' ? 1 : 0,
      strayNeverOpened: c.stray === 'never-opened' ? 1 : 0,
      strayBytes: c.stray !== null && isData ? c.header.length : 0,
      strayResets: reset ? 1 : 0,
    }, 'stats count the frame as the case says')
    t.same(strays.slice(strayMark), c.stray === null ? [] : [{ header: c.header, reason: c.stray, reset }], "the 'stray' event reports it")
  })
}

t.test('neverOpened: the id rule on its edges', async t => {
  const server = { client: false, nextId: 6, maxRemoteId: 7 } // opened 2, 4; the peer SYN'd up to 7
  t.same([2, 4, 6, 8].map(id => neverOpened(id, server)), [false, false, true, true], 'own parity: below nextId was opened')
  t.same([1, 3, 7, 9, 0xffffffff].map(id => neverOpened(id, server)), [false, false, false, true, true], 'peer parity: up to maxRemoteId was opened')
  const fresh = { client: true, nextId: 1, maxRemoteId: 0 }
  t.same([1, 2, 3, 0xfffffffe].map(id => neverOpened(id, fresh)), [true, true, true, true], 'a fresh session has opened nothing')
  const exhausted = { client: true, nextId: 0x100000001, maxRemoteId: 0 }
  t.equal(neverOpened(0xffffffff, exhausted), false, 'a client that used its last id has opened every odd id')
})
