// PROXY protocol encoders against spec/vectors/proxy-protocol.json (hand-derived from haproxy's
// proxy-protocol.txt, one header captured from haproxy), a naive DataView decoder of the v2
// layout, and a header read back by a real TCP server ahead of the payload.
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import t from 'tap'
import {
  PROXY_V2_SIGNATURE, encodeProxyHeader, encodeProxyV1, encodeProxyV2, encodeProxyV2Local, type ProxyInfo,
} from '../../src/http/proxy-protocol.js'
import { withTimeout } from '../helpers/wait.js'

interface Endpoint { address: string, port: number }
interface Vector { name: string, source: Endpoint | null, destination: Endpoint | null, text?: string, hex?: string, local?: boolean }
const vectors = JSON.parse(await readFile(new URL('../../spec/vectors/proxy-protocol.json', import.meta.url), 'utf8')) as { v1: Vector[], v2: Vector[] }

const info = (v: Vector): ProxyInfo | undefined => v.source === null || v.destination === null ? undefined : { source: v.source, destination: v.destination }

t.test('v1 vectors', async t => {
  t.ok(vectors.v1.length >= 6)
  for (const v of vectors.v1) {
    const out = encodeProxyV1(info(v))
    t.equal(out.toString('latin1'), v.text, v.name)
    t.ok(out.length <= 107, `${v.name}: within the 107-byte line limit`)
    t.equal(encodeProxyHeader(1, info(v)).toString('latin1'), v.text)
  }
})

/** Naive v2 reader from the spec's layout, written independently of the encoder. */
function readV2 (buf: Buffer): { verCmd: number, famProto: number, src?: string, dst?: string, srcPort?: number, dstPort?: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]
  sig.forEach((b, i) => { if (dv.getUint8(i) !== b) throw new Error(`signature byte ${i}`) })
  const verCmd = dv.getUint8(12)
  const famProto = dv.getUint8(13)
  const len = dv.getUint16(14)
  if (buf.length !== 16 + len) throw new Error(`length ${len} does not match ${buf.length - 16}`)
  if (famProto === 0x11) {
    const ip = (o: number): string => [0, 1, 2, 3].map(i => dv.getUint8(o + i)).join('.')
    return { verCmd, famProto, src: ip(16), dst: ip(20), srcPort: dv.getUint16(24), dstPort: dv.getUint16(26) }
  }
  if (famProto === 0x21) {
    const ip = (o: number): string => Array.from({ length: 8 }, (_, i) => dv.getUint16(o + 2 * i).toString(16)).join(':')
    return { verCmd, famProto, src: ip(16), dst: ip(32), srcPort: dv.getUint16(48), dstPort: dv.getUint16(50) }
  }
  return { verCmd, famProto }
}

t.test('v2 vectors, cross-checked with a naive reader', async t => {
  t.equal(PROXY_V2_SIGNATURE.toString('hex'), '0d0a0d0a000d0a515549540a')
  for (const v of vectors.v2) {
    const out = v.local === true ? encodeProxyV2Local() : encodeProxyV2(info(v))
    t.equal(out.toString('hex'), v.hex, v.name)
    if (v.local !== true) t.equal(encodeProxyHeader(2, info(v)).toString('hex'), v.hex)
    const r = readV2(out)
    t.equal(r.verCmd >> 4, 2, `${v.name}: version 2`)
    t.equal(r.verCmd & 0x0f, v.local === true ? 0 : 1, `${v.name}: command`)
    if (v.source !== null && v.destination !== null) {
      t.equal(r.srcPort, v.source.port)
      t.equal(r.dstPort, v.destination.port)
    }
  }
  const v6 = readV2(encodeProxyV2({ source: { address: '2001:db8::1', port: 1 }, destination: { address: 'fe80::abcd', port: 2 } }))
  t.same(v6, { verCmd: 0x21, famProto: 0x21, src: '2001:db8:0:0:0:0:0:1', dst: 'fe80:0:0:0:0:0:0:abcd', srcPort: 1, dstPort: 2 })
})

t.test('invalid endpoints are programming errors (TypeError)', async t => {
  const ok = { address: '10.0.0.1', port: 80 }
  t.throws(() => encodeProxyV1({ source: { address: 'host.example', port: 1 }, destination: ok }), TypeError)
  t.throws(() => encodeProxyV2({ source: ok, destination: { address: '10.0.0.2', port: 65536 } }), TypeError)
  t.throws(() => encodeProxyV2({ source: ok, destination: { address: '10.0.0.2', port: -1 } }), TypeError)
  t.throws(() => encodeProxyV1({ source: ok, destination: { address: '10.0.0.2', port: 1.5 } }), TypeError)
})

t.test('a real connection: header then payload, from the socket\'s own addresses', async t => {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as net.AddressInfo).port
  const accepted = once(server, 'connection')
  const client = net.connect(port, '127.0.0.1')
  t.teardown(() => client.destroy())
  await withTimeout(once(client, 'connect'), { what: 'connect' })
  const [sock] = await withTimeout(accepted, { what: 'accept' }) as [net.Socket]
  t.teardown(() => sock.destroy())
  const got: Buffer[] = []
  sock.on('data', (d: Buffer) => got.push(d))
  const visitor = { address: client.localAddress!, port: client.localPort! }
  const header = encodeProxyV2({ source: visitor, destination: { address: '127.0.0.1', port } })
  client.end(Buffer.concat([header, Buffer.from('payload')]))
  await withTimeout(once(sock, 'end'), { what: 'end of the stream' })
  const all = Buffer.concat(got)
  const r = readV2(all.subarray(0, 28))
  t.same(r, { verCmd: 0x21, famProto: 0x11, src: '127.0.0.1', dst: '127.0.0.1', srcPort: client.localPort, dstPort: port })
  t.equal(all.subarray(28).toString(), 'payload')
  t.equal(encodeProxyV1({ source: visitor, destination: { address: '127.0.0.1', port } }).toString(), `PROXY TCP4 127.0.0.1 127.0.0.1 ${client.localPort} ${port}\r\n`)
})
