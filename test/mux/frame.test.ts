// Frame codec: spec vectors round-trip, cross-check with the naive DataView codec, pinned constants.
import t from 'tap'
import {
  FrameTooLargeError, InvalidFrameTypeError, InvalidVersionError, MportError, ProtocolError,
} from '../../src/errors.js'
import {
  decodeHeader, encodeHeader, Flag, formatFlags, formatHeader, FrameType, GoAwayCode, HEADER_LENGTH,
  INITIAL_STREAM_WINDOW, MAX_UINT32, writeHeader, YAMUX_VERSION, type FrameHeader,
} from '../../src/mux/frame.js'
import {
  fromHex, loadFrameVectors, mulberry32, naiveCheck, naiveDecode, naiveEncode, randInt, toHex,
} from '../helpers/naive-codec.js'

const vectors = await loadFrameVectors()

/** Error class expected for each code an invalid header vector may list. */
const classFor: Record<string, new (...args: never[]) => ProtocolError> = {
  MPORT_ERR_INVALID_VERSION: InvalidVersionError,
  MPORT_ERR_INVALID_FRAME_TYPE: InvalidFrameTypeError,
  MPORT_ERR_FRAME_TOO_LARGE: FrameTooLargeError,
}

t.test('constants are pinned to the spec', async t => {
  t.equal(HEADER_LENGTH, 12)
  t.equal(YAMUX_VERSION, 0)
  t.equal(INITIAL_STREAM_WINDOW, 262144)
  t.equal(MAX_UINT32, 0xffff_ffff)
  t.same({ Data: FrameType.Data, WindowUpdate: FrameType.WindowUpdate, Ping: FrameType.Ping, GoAway: FrameType.GoAway },
    { Data: 0, WindowUpdate: 1, Ping: 2, GoAway: 3 })
  t.same({ SYN: Flag.SYN, ACK: Flag.ACK, FIN: Flag.FIN, RST: Flag.RST }, { SYN: 1, ACK: 2, FIN: 4, RST: 8 })
  t.same({ Normal: GoAwayCode.Normal, ProtocolError: GoAwayCode.ProtocolError, InternalError: GoAwayCode.InternalError },
    { Normal: 0, ProtocolError: 1, InternalError: 2 })
  t.equal(FrameType[0], 'Data', 'reverse mapping names the type')
  t.equal(Flag[8], 'RST')
})

t.test('the vector file covers what occurs on the wire', async t => {
  t.ok(vectors.valid.length >= 20, `at least 20 valid vectors (have ${vectors.valid.length})`)
  const headers = vectors.valid.map(v => v.header)
  for (const type of [FrameType.Data, FrameType.WindowUpdate, FrameType.Ping, FrameType.GoAway]) {
    t.ok(headers.some(h => h.type === type), `type ${FrameType[type]} is covered`)
  }
  const combos: Array<[FrameType, number]> = [
    [FrameType.Data, Flag.SYN], [FrameType.Data, 0], [FrameType.Data, Flag.ACK], [FrameType.Data, Flag.FIN], [FrameType.Data, Flag.RST],
    [FrameType.WindowUpdate, Flag.SYN], [FrameType.WindowUpdate, Flag.ACK], [FrameType.WindowUpdate, Flag.SYN | Flag.ACK],
    [FrameType.WindowUpdate, Flag.FIN], [FrameType.WindowUpdate, Flag.RST], [FrameType.WindowUpdate, 0],
    [FrameType.Ping, Flag.SYN], [FrameType.Ping, Flag.ACK], [FrameType.GoAway, 0],
  ]
  for (const [type, flags] of combos) {
    t.ok(headers.some(h => h.type === type && h.flags === flags), `${FrameType[type]} with flags ${formatFlags(flags)} is covered`)
  }
  for (const code of [0, 1, 2]) t.ok(headers.some(h => h.type === FrameType.GoAway && h.length === code), `GoAway ${code} is covered`)
  t.ok(headers.some(h => h.streamId === MAX_UINT32), 'max stream id is covered')
  t.ok(headers.some(h => h.length === MAX_UINT32), 'max length is covered')
  t.ok(headers.some(h => h.type === FrameType.Data && h.length === 0), 'zero-length data is covered')
  const codes = new Set(vectors.invalid.map(v => v.code))
  for (const code of Object.keys(classFor)) t.ok(codes.has(code), `an invalid vector expects ${code}`)
})

t.test('every valid vector round-trips', async t => {
  for (const v of vectors.valid) {
    const h = v.header as FrameHeader
    t.equal(toHex(naiveEncode(h)), v.hex, `${v.name}: the vector agrees with the naive codec`)
    const encoded = encodeHeader(h)
    t.equal(encoded.length, HEADER_LENGTH, `${v.name}: 12 bytes`)
    t.equal(encoded.toString('hex'), v.hex, `${v.name}: encodeHeader`)
    t.same(decodeHeader(Buffer.from(v.hex, 'hex')), v.header, `${v.name}: decodeHeader`)

    // At an offset inside a larger buffer, with junk on both sides.
    const big = Buffer.alloc(HEADER_LENGTH + 7, 0xee)
    writeHeader(big, 3, h)
    t.equal(big.subarray(3, 15).toString('hex'), v.hex, `${v.name}: writeHeader at offset 3`)
    t.equal(big[2], 0xee, `${v.name}: writeHeader stays in its 12 bytes (before)`)
    t.equal(big[15], 0xee, `${v.name}: writeHeader stays in its 12 bytes (after)`)
    t.same(decodeHeader(big, 3), v.header, `${v.name}: decodeHeader at offset 3`)
  }
})

t.test('invalid vectors are rejected with the right class and code', async t => {
  for (const v of vectors.invalid) {
    const Expected = classFor[v.code]
    if (Expected === undefined) {
      t.fail(`${v.name}: no error class known for ${v.code}`)
      continue
    }
    const bytes = Buffer.from(v.hex, 'hex')
    t.equal(naiveCheck(naiveDecode(bytes), v.maxFrameSize), v.code, `${v.name}: the vector agrees with the naive codec`)
    if (v.code === 'MPORT_ERR_FRAME_TOO_LARGE') {
      // A length limit is the decoder's business (test/mux/decoder.test.ts); the header itself is well-formed.
      t.same(decodeHeader(bytes), v.header, `${v.name}: decodeHeader accepts the header`)
      const err = new FrameTooLargeError(v.header!.length, v.maxFrameSize!)
      t.equal(err.code, v.code)
      continue
    }
    let thrown: unknown
    try {
      decodeHeader(bytes)
    } catch (err) {
      thrown = err
    }
    t.type(thrown, Expected, `${v.name}: throws ${Expected.name}`)
    t.type(thrown, ProtocolError, `${v.name}: a protocol error`)
    t.match(thrown, { code: v.code, goAway: GoAwayCode.ProtocolError, name: Expected.name }, `${v.name}: code and GoAway`)
  }
  t.throws(() => decodeHeader(Buffer.from('010000000000000100000000', 'hex')), {
    code: 'MPORT_ERR_INVALID_VERSION', version: 1, message: 'unsupported yamux version 1 (expected 0)',
  })
  t.throws(() => decodeHeader(Buffer.from('000400000000000100000000', 'hex')), {
    code: 'MPORT_ERR_INVALID_FRAME_TYPE', frameType: 4, message: 'unknown frame type 4',
  })
})

t.test('a short buffer is a RangeError, not a protocol error', async t => {
  t.throws(() => decodeHeader(Buffer.alloc(11)), RangeError)
  t.throws(() => decodeHeader(Buffer.alloc(20), 9), RangeError)
  const err = (() => { try { decodeHeader(Buffer.alloc(11)) } catch (e) { return e } })()
  t.notOk(err instanceof MportError, 'not an MportError: framing code never asks for bytes it does not have')
})

t.test('encodeHeader returns a fresh buffer each time', async t => {
  const h: FrameHeader = { type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 7 }
  const a = encodeHeader(h)
  const b = encodeHeader(h)
  t.not(a, b)
  a.fill(0xff)
  t.equal(b.toString('hex'), '000200010000000000000007')
})

t.test('random headers agree with the naive codec', async t => {
  const rand = mulberry32(0x5eed_f00d)
  const uint32 = (): number => {
    // Bias towards the edges where byte order and sign bugs show.
    const r = rand()
    if (r < 0.1) return 0
    if (r < 0.2) return MAX_UINT32
    if (r < 0.3) return randInt(rand, 0, 0xff) * 0x0100_0000
    return randInt(rand, 0, MAX_UINT32)
  }
  let checked = 0
  for (let i = 0; i < 4000; i++) {
    const h: FrameHeader = {
      type: randInt(rand, 0, 3),
      flags: rand() < 0.8 ? randInt(rand, 0, 15) : randInt(rand, 0, 0xffff),
      streamId: uint32(),
      length: uint32(),
    }
    const fast = encodeHeader(h)
    const naive = naiveEncode(h)
    if (fast.toString('hex') !== toHex(naive)) {
      t.fail(`encode differs for ${JSON.stringify(h)}: ${fast.toString('hex')} vs ${toHex(naive)}`)
      break
    }
    const back = decodeHeader(Buffer.from(naive))
    if (back.type !== h.type || back.flags !== h.flags || back.streamId !== h.streamId || back.length !== h.length) {
      t.fail(`decode differs for ${JSON.stringify(h)}: ${JSON.stringify(back)}`)
      break
    }
    checked++
  }
  t.equal(checked, 4000, 'all 4000 headers agree')

  // Arbitrary 12-byte strings: decodeHeader accepts exactly what the naive rules accept.
  let agreed = 0
  for (let i = 0; i < 4000; i++) {
    const bytes = new Uint8Array(12)
    for (let j = 0; j < 12; j++) bytes[j] = randInt(rand, 0, 255)
    if (rand() < 0.5) bytes[0] = 0 // reach the type check half the time
    if (rand() < 0.5) bytes[1] = randInt(rand, 0, 5)
    const raw = naiveDecode(bytes)
    const want = naiveCheck(raw)
    let got: string | undefined
    let decoded: FrameHeader | undefined
    try {
      decoded = decodeHeader(Buffer.from(bytes))
    } catch (err) {
      got = (err as MportError).code
    }
    const same = got === want && (decoded === undefined ||
      (decoded.type === raw.type && decoded.flags === raw.flags && decoded.streamId === raw.streamId && decoded.length === raw.length))
    if (!same) {
      t.fail(`${toHex(bytes)}: decodeHeader gave ${got ?? JSON.stringify(decoded)}, naive says ${want ?? 'valid'}`)
      break
    }
    agreed++
  }
  t.equal(agreed, 4000, 'all 4000 byte strings classified alike')
})

t.test('formatHeader and formatFlags', async t => {
  t.equal(formatHeader({ type: FrameType.Data, flags: Flag.SYN | Flag.ACK, streamId: 1, length: 5 }),
    'streamID=1 type=Data flag=SYN|ACK length=5')
  t.equal(formatHeader({ type: FrameType.WindowUpdate, flags: 0, streamId: 3, length: 262144 }),
    'streamID=3 type=WindowUpdate flag=0 length=262144')
  t.equal(formatHeader({ type: FrameType.Ping, flags: Flag.ACK, streamId: 0, length: MAX_UINT32 }),
    'streamID=0 type=Ping flag=ACK length=4294967295')
  t.equal(formatHeader({ type: FrameType.GoAway, flags: 0, streamId: 0, length: GoAwayCode.ProtocolError }),
    'streamID=0 type=GoAway flag=0 length=1')
  t.equal(formatHeader({ type: 9 as FrameType, flags: 0, streamId: 0, length: 0 }),
    'streamID=0 type=9 flag=0 length=0', 'unknown type shown as a number')
  t.equal(formatFlags(Flag.SYN | Flag.ACK | Flag.FIN | Flag.RST), 'SYN|ACK|FIN|RST')
  t.equal(formatFlags(Flag.FIN | Flag.RST), 'FIN|RST')
  t.equal(formatFlags(0x10 | Flag.SYN), 'SYN|0x10', 'unknown bits in hex')
  t.equal(formatFlags(0xffff), 'SYN|ACK|FIN|RST|0xfff0')
  t.equal(formatFlags(0), '0')
  t.equal(fromHex(toHex(new Uint8Array([0, 1, 0xab]))).join(','), '0,1,171', 'hex helpers round-trip')
})
