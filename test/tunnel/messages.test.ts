/** Control-protocol vectors: every message encodes to its bytes and parses back; invalid ones fail typed. */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  encodeMessage, encodeStreamHeader, parseClientMessage, parseRelayMessage, parseStreamHeader,
  MAX_CONTROL_MESSAGE, MAX_STREAM_HEADER, type ClientMessage, type RelayMessage, type StreamHeader,
} from '../../src/tunnel/messages.js'

interface Vectors {
  client: Array<{ name: string, message: ClientMessage, hex: string }>
  relay: Array<{ name: string, message: RelayMessage, hex: string }>
  invalid: Array<{ name: string, from: 'client' | 'relay', body: string, code: string }>
  streamHeaders: Array<{ name: string, header: StreamHeader, hex: string }>
  limits: { maxControlMessage: number, maxStreamHeader: number }
}
const v = JSON.parse(readFileSync(fileURLToPath(new URL('../../spec/vectors/control.json', import.meta.url)), 'utf8')) as Vectors

t.test('limits match the documented vectors', async t => {
  t.equal(MAX_CONTROL_MESSAGE, v.limits.maxControlMessage)
  t.equal(MAX_STREAM_HEADER, v.limits.maxStreamHeader)
})

t.test('client messages', async t => {
  for (const c of v.client) {
    t.equal(encodeMessage(c.message).toString('hex'), c.hex, `${c.name}: encodes`)
    t.same(parseClientMessage(Buffer.from(c.hex, 'hex').subarray(4)), c.message, `${c.name}: parses`)
  }
})

t.test('relay messages', async t => {
  for (const c of v.relay) {
    t.equal(encodeMessage(c.message).toString('hex'), c.hex, `${c.name}: encodes`)
    t.same(parseRelayMessage(Buffer.from(c.hex, 'hex').subarray(4)), c.message, `${c.name}: parses`)
  }
})

t.test('visitor stream headers', async t => {
  for (const c of v.streamHeaders) {
    t.equal(encodeStreamHeader(c.header).toString('hex'), c.hex, `${c.name}: encodes`)
    t.same(parseStreamHeader(Buffer.from(c.hex, 'hex').subarray(2)), c.header, `${c.name}: parses`)
  }
})

t.test('invalid messages fail with their code', async t => {
  for (const c of v.invalid) {
    const parse = c.from === 'client' ? parseClientMessage : parseRelayMessage
    t.throws(() => parse(Buffer.from(c.body)), { code: c.code }, c.name)
  }
})

t.test('oversized messages are refused when encoding', async t => {
  t.throws(() => encodeMessage({ t: 'error', code: 'X', message: 'x'.repeat(MAX_CONTROL_MESSAGE) }), { code: 'MPORT_ERR_MESSAGE_TOO_LARGE' })
  t.throws(() => encodeStreamHeader({ id: 1, addr: 'x'.repeat(MAX_STREAM_HEADER), port: 1 }), { code: 'MPORT_ERR_MESSAGE_TOO_LARGE' })
})
