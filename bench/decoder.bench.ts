/**
 * FrameDecoder throughput: Data frames with payloads from 64 B to 1 MiB, either one frame per
 * pushed chunk or 1000 frames concatenated in one chunk (hashicorp SendRecv* / libp2p ladder).
 * The sink only counts bytes, so this measures header parsing, slicing and dispatch; payloads
 * are handed on as views, never copied, which is why large payloads reach "memory" speeds.
 *
 * Run alone: npx tsx bench/decoder.bench.ts
 */
import { FrameDecoder, type FrameSink } from '../src/mux/decoder.js'
import { FrameType, HEADER_LENGTH, writeHeader, type FrameHeader } from '../src/mux/frame.js'
import { formatSize, isMain, runSuite, type BenchCase, type CaseResult } from './helpers/suite.js'

export const PAYLOAD_SIZES = [64, 1024, 16 * 1024, 64 * 1024, 1024 * 1024]
export const FRAME_COUNTS = [1, 1000]

class CountingSink implements FrameSink {
  frames = 0
  bytes = 0
  onFrame (_h: FrameHeader): void { this.frames++ }
  onDataHeader (_h: FrameHeader): void {}
  onDataPayload (_h: FrameHeader, payload: Buffer): void { this.bytes += payload.length }
  onDataEnd (_h: FrameHeader): void { this.frames++ }
}

/** `count` Data frames with `size`-byte payloads, back to back in one buffer. */
function buildChunk (size: number, count: number): Buffer {
  const frame = HEADER_LENGTH + size
  const buf = Buffer.alloc(frame * count)
  for (let i = 0; i < count; i++) writeHeader(buf, i * frame, { type: FrameType.Data, flags: 0, streamId: 1 + 2 * (i % 64), length: size })
  return buf
}

export function decoderCases (): BenchCase[] {
  const cases: BenchCase[] = []
  for (const size of PAYLOAD_SIZES) {
    for (const count of FRAME_COUNTS) {
      const sink = new CountingSink()
      const decoder = new FrameDecoder(sink, 16 * 1024 * 1024)
      let chunk: Buffer = Buffer.alloc(0)
      cases.push({
        name: `decode data frame (${formatSize(size)} payload) x${count}`,
        bytes: (HEADER_LENGTH + size) * count,
        prepare: () => { chunk = buildChunk(size, count) }, // up to 1000 MiB for 1 MiB x1000
        release: () => {
          if (sink.bytes % (size * count) !== 0) throw new Error(`decoder lost bytes: ${sink.bytes} for ${size} x${count}`)
          chunk = Buffer.alloc(0)
        },
        fn: () => decoder.push(chunk),
      })
    }
  }
  return cases
}

export function decoderBench (): Promise<CaseResult[]> {
  return runSuite('FrameDecoder.push (bytes incl. 12-byte headers)', decoderCases())
}

if (isMain(import.meta.url)) await decoderBench()
