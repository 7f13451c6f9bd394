/**
 * @chainsafe/libp2p-yamux 7.x over a net.Socket, for the throughput bench only.
 *
 * libp2p muxers speak it-stream-types duplexes (`source` async iterable, `sink(source)`), not
 * Node streams. This adapter feeds socket chunks to `muxer.sink` and writes `muxer.source` to
 * the socket, honouring the socket's backpressure (await 'drain'), and writes the header and
 * payload of a frame (a Uint8ArrayList) as separate buffers under one cork, without copying.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { yamux } from '@chainsafe/libp2p-yamux'
// Types only (erased at run time): @libp2p/interface comes with @chainsafe/libp2p-yamux.
import type { ComponentLogger, Logger, Stream, StreamMuxer } from '@libp2p/interface'

type MuxerInit = NonNullable<Parameters<typeof yamux>[0]>
export type Libp2pMuxer = StreamMuxer
export type Libp2pStream = Stream

/**
 * The configuration the bench uses on both sides (documented in bench/README.md):
 * Data payloads of 64 KiB like mport's maxSendFrameSize (libp2p's maxMessageSize includes the
 * 12-byte header), the spec's 256 KiB initial window growing to 16 MiB like mport's
 * maxStreamWindow, keepalive off (the initial RTT ping still runs, as in mport), no stream limit.
 */
export const libp2pBenchConfig = {
  maxMessageSize: 64 * 1024 + 12,
  initialStreamWindowSize: 256 * 1024,
  maxStreamWindowSize: 16 * 1024 * 1024,
  enableKeepAlive: false,
  maxInboundStreams: 4096,
  maxOutboundStreams: 4096,
} satisfies Partial<MuxerInit>

const noop = (): void => {}
const silentLog: Logger = Object.assign(noop, { error: noop, trace: noop, enabled: false, newScope: (): Logger => silentLog })
const components: { logger: ComponentLogger } = { logger: { forComponent: () => silentLog } }

export interface Libp2pOverSocket {
  muxer: Libp2pMuxer
  /** Settles when both directions of the adapter have stopped. */
  done: Promise<void>
}

/**
 * Runs a libp2p yamux muxer over `socket`; `onStream` receives streams opened by the peer.
 * `config` overrides libp2pBenchConfig. A failure in either direction destroys the socket, so a
 * broken run ends instead of hanging.
 */
export function libp2pYamuxOverSocket (socket: Socket, client: boolean, onStream?: (s: Libp2pStream) => void, config: Partial<MuxerInit> = {}): Libp2pOverSocket {
  const muxer = yamux({ ...libp2pBenchConfig, ...config })(components).createStreamMuxer({
    direction: client ? 'outbound' : 'inbound',
    ...(onStream === undefined ? {} : { onIncomingStream: onStream }),
  })
  const inbound = Promise.resolve(muxer.sink((async function * () { yield * socket as AsyncIterable<Buffer> })())).catch(() => { socket.destroy() })
  const outbound = (async () => {
    for await (const item of muxer.source) {
      let ok = true
      if (item instanceof Uint8Array) {
        ok = socket.write(item)
      } else {
        socket.cork()
        for (const piece of item) ok = socket.write(piece)
        socket.uncork()
      }
      if (!ok && !socket.destroyed) await once(socket, 'drain')
    }
    if (!socket.destroyed) socket.end()
  })().catch(() => { socket.destroy() })
  return { muxer, done: Promise.all([inbound, outbound]).then(() => {}) }
}
