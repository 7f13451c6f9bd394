/**
 * ChunkSource: a socket that reads into one buffer it reuses (net.Socket's and tls.connect's
 * `onread` option) instead of a new Buffer and a 'data' event per read. A chunk is valid only
 * during the call: whoever keeps bytes copies them. For a TLS socket that is one callback per
 * 16 KiB record with no allocation and no stream machinery behind it.
 */
export interface ChunkSource {
  /** Starts delivering chunks to `onChunk`, those that arrived before attach() first. */
  attach (onChunk: (chunk: Buffer) => void): void
  /** Stops delivering; later chunks are dropped. */
  detach (): void
}
