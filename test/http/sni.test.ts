// ClientHelloParser against real ClientHellos written by node:tls clients into a raw socket:
// every split point, multi-record reassembly, truncation, seeded garbage and mutations that
// may only end in a typed error, and a replay of the buffered bytes into a real TLS server.
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { InvalidClientHelloError } from '../../src/errors.js'
import {
  ClientHelloParser, MAX_CLIENT_HELLO_BUFFER, parseClientHello, type ClientHelloResult,
} from '../../src/http/sni.js'
import { generateSelfSigned } from '../../src/transport/certs.js'
import { mulberry32, randInt } from '../helpers/naive-codec.js'
import { withTimeout } from '../helpers/wait.js'

/** Bytes a node:tls client sends first, captured on a plain TCP server (one whole record). */
async function captureClientHello (opts: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  try {
    const got = new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (sock: net.Socket) => {
        const chunks: Buffer[] = []
        let total = 0
        sock.on('data', (d: Buffer) => {
          chunks.push(d)
          total += d.length
          const all = Buffer.concat(chunks)
          if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
            sock.destroy()
            resolve(all.subarray(0, 5 + all.readUInt16BE(3)))
          }
        })
        sock.on('error', reject)
        sock.on('end', () => reject(new Error(`client ended after ${total} bytes`)))
      })
    })
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts })
    client.on('error', () => {}) // the server hangs up mid-handshake on purpose
    try {
      return await withTimeout(got, { what: 'a ClientHello' })
    } finally {
      client.destroy()
    }
  } finally {
    server.close()
  }
}

const hellos = {
  plain: await captureClientHello({ servername: 'app.example.test' }),
  noSni: await captureClientHello({}),
  alpn: await captureClientHello({ servername: 'ws.example.test', ALPNProtocols: ['h2', 'http/1.1'] }),
  tls12: await captureClientHello({ servername: 'legacy.example.test', maxVersion: 'TLSv1.2' }),
  upper: await captureClientHello({ servername: 'MiXeD.Example.TEST' }),
  long: await captureClientHello({ servername: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.test` }),
}
const expected: Record<keyof typeof hellos, { sni: string | undefined, alpn?: string[] }> = {
  plain: { sni: 'app.example.test' },
  noSni: { sni: undefined },
  alpn: { sni: 'ws.example.test', alpn: ['h2', 'http/1.1'] },
  tls12: { sni: 'legacy.example.test' },
  upper: { sni: 'mixed.example.test' },
  long: { sni: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.test` },
}

function done (r: ClientHelloResult): { sni: string | undefined, alpn: string[] | undefined } | undefined {
  return r.state === 'done' ? { sni: r.serverName, alpn: r.alpn } : undefined
}

/** Runs a parser over `parts`, returning the first non-need-more answer and how many parts it took. */
function feed (parts: Buffer[]): { result: ClientHelloResult, used: number, parser: ClientHelloParser } {
  const parser = new ClientHelloParser()
  for (let i = 0; i < parts.length; i++) {
    const result = parser.push(parts[i]!)
    if (result.state !== 'need-more') return { result, used: i + 1, parser }
  }
  return { result: parser.result, used: parts.length, parser }
}

/** The same handshake message re-framed into records of at most `size` bytes. */
function reframe (record: Buffer, size: number): Buffer {
  const hs = record.subarray(5)
  const out: Buffer[] = []
  for (let off = 0; off < hs.length; off += size) {
    const frag = hs.subarray(off, off + size)
    const header = Buffer.from([0x16, 0x03, 0x01, 0, 0])
    header.writeUInt16BE(frag.length, 3)
    out.push(header, frag)
  }
  return Buffer.concat(out)
}

t.test('real ClientHellos: server name and ALPN', async t => {
  for (const [name, bytes] of Object.entries(hellos) as Array<[keyof typeof hellos, Buffer]>) {
    t.equal(bytes[0], 0x16, `${name}: starts with a handshake record`)
    const r = parseClientHello(bytes)
    t.equal(r.state, 'done', `${name}: done`)
    t.equal(done(r)?.sni, expected[name].sni, `${name}: server name`)
    if (expected[name].alpn !== undefined) t.same(done(r)?.alpn, expected[name].alpn, `${name}: ALPN`)
  }
  t.equal(done(parseClientHello(hellos.plain))?.alpn, undefined, 'no ALPN extension → undefined')
})

t.test('split at every byte offset, and byte by byte', async t => {
  for (const [name, bytes] of Object.entries(hellos) as Array<[keyof typeof hellos, Buffer]>) {
    let bad = 0
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { result, used, parser } = feed([bytes.subarray(0, cut), bytes.subarray(cut)])
      if (done(result)?.sni !== expected[name].sni || used !== (cut === bytes.length ? 1 : 2) || !parser.buffered.equals(bytes)) bad++
    }
    t.equal(bad, 0, `${name}: all ${bytes.length + 1} two-piece splits`)
    const singles = Array.from(bytes, b => Buffer.from([b]))
    const { result, used } = feed(singles)
    t.equal(done(result)?.sni, expected[name].sni, `${name}: byte by byte`)
    t.equal(used, bytes.length, 'answers exactly at the last byte')
  }
})

t.test('a ClientHello fragmented over several records is reassembled', async t => {
  for (const size of [1, 2, 3, 4, 5, 7, 64, 100, 511]) {
    const multi = reframe(hellos.alpn, size)
    const r = parseClientHello(multi)
    t.same(done(r), { sni: 'ws.example.test', alpn: ['h2', 'http/1.1'] }, `records of ${size} bytes`)
    const { result } = feed(Array.from({ length: Math.ceil(multi.length / 13) }, (_, i) => multi.subarray(i * 13, i * 13 + 13)))
    t.equal(done(result)?.sni, 'ws.example.test', `records of ${size} bytes fed in 13-byte pieces`)
  }
})

t.test('truncated ClientHellos ask for more, never answer wrongly', async t => {
  for (const bytes of [hellos.plain, hellos.alpn, reframe(hellos.plain, 50)]) {
    for (let n = 0; n < bytes.length; n++) {
      const r = parseClientHello(bytes.subarray(0, n))
      if (r.state !== 'need-more') t.fail(`prefix of ${n} bytes answered ${r.state}`)
    }
  }
  t.pass('every proper prefix is need-more')
})

t.test('not TLS', async t => {
  const cases = ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'SSH-2.0-OpenSSH_9.2\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n', '\x80\x2e\x01\x03\x01']
  for (const c of cases) t.equal(new ClientHelloParser().push(Buffer.from(c, 'latin1')).state, 'not-tls', JSON.stringify(c.slice(0, 12)))
  t.equal(parseClientHello(Buffer.from([0x16, 0x02])).state, 'not-tls', 'record version major 2')
  t.equal(parseClientHello(Buffer.from([0x17, 0x03, 0x03, 0, 1, 0])).state, 'not-tls', 'application data first')
  t.equal(parseClientHello(Buffer.from([0x16])).state, 'need-more', 'one handshake byte is not enough to tell')
  // once decided, the answer sticks and later bytes are only buffered
  const p = new ClientHelloParser()
  t.equal(p.push(Buffer.from('GET')).state, 'not-tls')
  t.equal(p.push(hellos.plain).state, 'not-tls')
  t.equal(p.buffered.length, 3 + hellos.plain.length)
})

t.test('malformed handshakes throw InvalidClientHelloError, sticky', async t => {
  const rec = (body: number[]): Buffer => {
    const b = Buffer.from([0x16, 0x03, 0x01, 0, 0, ...body])
    b.writeUInt16BE(body.length, 3)
    return b
  }
  const withSni = (sniExt: Buffer): Buffer => {
    // a minimal well-formed ClientHello around one extension block
    const body = Buffer.concat([
      Buffer.from([0x03, 0x03]), Buffer.alloc(32), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]),
      Buffer.from([sniExt.length >> 8, sniExt.length & 0xff]), sniExt,
    ])
    return rec([1, 0, body.length >> 8, body.length & 0xff, ...body])
  }
  const sniExt = (name: Buffer, type = 0): Buffer => {
    const entry = Buffer.concat([Buffer.from([type, name.length >> 8, name.length & 0xff]), name])
    const list = Buffer.concat([Buffer.from([entry.length >> 8, entry.length & 0xff]), entry])
    return Buffer.concat([Buffer.from([0, 0, list.length >> 8, list.length & 0xff]), list])
  }
  t.same(done(parseClientHello(withSni(sniExt(Buffer.from('ok.example'))))), { sni: 'ok.example', alpn: undefined }, 'the builder is sound')
  t.same(done(parseClientHello(withSni(sniExt(Buffer.from('x'), 7)))), { sni: undefined, alpn: undefined }, 'unknown name types are skipped')
  t.same(done(parseClientHello(withSni(sniExt(Buffer.from('trailing.dot.'))))), { sni: 'trailing.dot', alpn: undefined })
  const bad: Array<[string, Buffer, RegExp]> = [
    ['empty record', rec([]), /empty handshake record/],
    ['not a client_hello', rec([2, 0, 0, 0]), /type 2, not client_hello/],
    ['record too long', Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01]), /record length 16385/],
    ['huge handshake length', rec([1, 0xff, 0xff, 0xff]), /exceeds/],
    ['record of another type inside', Buffer.concat([rec([1, 0, 0, 100]), Buffer.from([0x15, 3, 3, 0, 2, 2, 40])]), /record of type 21/],
    ['body shorter than its fields', rec([1, 0, 0, 3, 3, 3, 0]), /random runs past the end/],
    ['host name with a NUL', withSni(sniExt(Buffer.from('evil\0.example'))), /byte 0x00/],
    ['host name with a space', withSni(sniExt(Buffer.from('a b'))), /byte 0x20/],
    ['empty host name', withSni(sniExt(Buffer.alloc(0))), /host_name of 0 bytes/],
    ['empty label', withSni(sniExt(Buffer.from('a..b'))), /empty label/],
    ['two server_name extensions', withSni(Buffer.concat([sniExt(Buffer.from('a')), sniExt(Buffer.from('b'))])), /appears twice/],
  ]
  for (const [name, bytes, msg] of bad) {
    const p = new ClientHelloParser()
    t.throws(() => p.push(bytes), { name: 'InvalidClientHelloError', code: 'MPORT_ERR_INVALID_CLIENT_HELLO', message: msg }, name)
    t.throws(() => p.push(Buffer.from([0])), { code: 'MPORT_ERR_INVALID_CLIENT_HELLO', message: msg }, `${name}: sticky`)
  }
})

t.test('never buffers more than one maximal record before answering', async t => {
  // A handshake announced as 20 000 bytes cannot fit: refused at its header.
  const big = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 1, 0x00, 0x4e, 0x20])
  t.throws(() => new ClientHelloParser().push(big), InvalidClientHelloError)
  // Records that keep a ClientHello incomplete past the limit are refused at the limit.
  const p = new ClientHelloParser()
  const first = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x3f, 0xf0, 1, 0x00, 0x3f, 0xfc]), Buffer.alloc(0x3ff0 - 4)])
  t.equal(p.push(first).state, 'need-more')
  t.throws(() => p.push(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20])), /spans more than 16389 bytes|exceeds/)
  t.equal(MAX_CLIENT_HELLO_BUFFER, 16 * 1024 + 5)
})

t.test('seeded fuzz: random bytes and mutated real ClientHellos only answer or throw the typed error', async t => {
  const rand = mulberry32(0x5e1ec7)
  const outcomes = { 'need-more': 0, 'not-tls': 0, done: 0, error: 0 }
  const bases = Object.values(hellos)
  for (let i = 0; i < 4000; i++) {
    let input: Buffer
    const kind = i % 4
    if (kind === 0) {
      input = Buffer.from(Array.from({ length: randInt(rand, 0, 600) }, () => randInt(rand, 0, 255)))
      if (input.length > 0 && rand() < 0.7) input[0] = 0x16
      if (input.length > 1 && rand() < 0.7) input[1] = 0x03
    } else {
      input = Buffer.from(bases[randInt(rand, 0, bases.length - 1)]!)
      const flips = randInt(rand, 1, 6)
      for (let f = 0; f < flips; f++) input[randInt(rand, 0, input.length - 1)] = randInt(rand, 0, 255)
      if (kind === 2) input = input.subarray(0, randInt(rand, 0, input.length))
      if (kind === 3) input = reframe(input, randInt(rand, 1, 300))
    }
    const p = new ClientHelloParser()
    let cut = 0
    try {
      let r: ClientHelloResult = { state: 'need-more' }
      while (cut < input.length && r.state === 'need-more') {
        const n = randInt(rand, 1, 64)
        r = p.push(input.subarray(cut, cut + n))
        cut += n
      }
      outcomes[r.state]++
      if (r.state === 'done' && r.serverName !== undefined && !/^[a-z0-9_.-]+$/.test(r.serverName)) t.fail(`odd server name ${JSON.stringify(r.serverName)}`)
    } catch (err) {
      outcomes.error++
      if (!(err instanceof InvalidClientHelloError)) t.fail(`input ${i}: threw ${String(err)}`)
    }
    if (p.buffered.length > Math.max(input.length, 0)) t.fail('buffered more than it was given')
  }
  t.ok(outcomes.done > 100, `some mutations still parse (${JSON.stringify(outcomes)})`)
  t.ok(outcomes.error > 100, 'many are refused with the typed error')
  t.ok(outcomes['not-tls'] > 50 && outcomes['need-more'] > 50, 'all outcomes occur')
})

t.test('the buffered bytes replay into a real TLS server, which completes the handshake', async t => {
  const pair = await generateSelfSigned(['app.example.test'])
  const seenNames: string[] = []
  const tlsServer = tls.createServer({ cert: pair.cert, key: pair.key }, s => s.end('hello over TLS'))
  await new Promise<void>(resolve => tlsServer.listen(0, '127.0.0.1', resolve))
  const tlsPort = (tlsServer.address() as net.AddressInfo).port
  // A raw front door, as in passthrough mode: read the SNI, then forward the bytes read so far
  // and everything after them, untouched, to the TLS server chosen by name.
  const front = net.createServer(sock => {
    const parser = new ClientHelloParser()
    const onData = (d: Buffer): void => {
      const r = parser.push(d)
      if (r.state === 'need-more') return
      sock.off('data', onData)
      if (r.state === 'done') seenNames.push(r.serverName ?? '(none)')
      const upstream = net.connect(tlsPort, '127.0.0.1')
      upstream.write(parser.buffered)
      sock.pipe(upstream).pipe(sock)
      upstream.on('error', () => sock.destroy())
      sock.on('error', () => upstream.destroy())
    }
    sock.on('data', onData)
  })
  await new Promise<void>(resolve => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { front.close(); tlsServer.close() })
  const port = (front.address() as net.AddressInfo).port
  const client = tls.connect({ host: '127.0.0.1', port, servername: 'app.example.test', ca: pair.cert })
  t.teardown(() => client.destroy())
  await withTimeout(once(client, 'secureConnect'), { what: 'TLS handshake through the SNI front door' })
  t.equal(client.authorized, true, 'client verified the certificate for app.example.test')
  const chunks: Buffer[] = []
  client.on('data', (d: Buffer) => chunks.push(d))
  await withTimeout(once(client, 'end'), { what: 'server greeting' })
  t.equal(Buffer.concat(chunks).toString(), 'hello over TLS')
  t.same(seenNames, ['app.example.test'])
})
