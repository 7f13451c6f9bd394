/**
 * PROXY protocol headers (haproxy's proxy-protocol.txt, versions 1 and 2) that the client can
 * write towards its local service before a raw TCP or TLS-passthrough connection's bytes, so
 * the service learns the visitor's address although the connection comes from the client.
 * Only the sender side is here, for TCP over IPv4 and IPv6; no TLVs.
 *
 * Version 1 is one text line, `PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n`. Version 2 is
 * binary: the 12-byte signature, version/command, family/protocol, a 16-bit address length,
 * then source address, destination address, source port, destination port, all big-endian.
 * A source and destination of different families are both written as IPv6 (IPv4-mapped).
 */
import { formatIp, parseIp, type IpAddress } from '../access/cidr.js'

/** The version 2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
/** Version 2 in the high nibble; command PROXY (1) or LOCAL (0) in the low one. */
const V2_PROXY = 0x21
const V2_LOCAL = 0x20
/** Family/protocol bytes: TCP over IPv4, TCP over IPv6, unspecified. */
const V2_TCP4 = 0x11
const V2_TCP6 = 0x21
const V2_UNSPEC = 0x00

/** An IP address and port. */
export interface Endpoint {
  address: string
  port: number
}

/** The addresses a PROXY protocol header carries to the local service. */
export interface ProxyInfo {
  /** The visitor (the connection's remote end at the relay). */
  source: Endpoint
  /** The address the visitor connected to (the relay's public side). */
  destination: Endpoint
}

/** `PROXY TCP4|TCP6 …\r\n`, or `PROXY UNKNOWN\r\n` when the addresses are not known. */
export function encodeProxyV1 (info: ProxyInfo | undefined): Buffer {
  if (info === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const { src, dst, family } = resolve(info)
  const line = `PROXY TCP${family} ${formatIp(src)} ${formatIp(dst)} ${info.source.port} ${info.destination.port}\r\n`
  return Buffer.from(line, 'latin1')
}

/**
 * The binary header: command PROXY with TCP4/TCP6 addresses, or, when the addresses are not
 * known, command PROXY with family UNSPEC and no address block.
 */
export function encodeProxyV2 (info: ProxyInfo | undefined): Buffer {
  if (info === undefined) return v2Header(V2_PROXY, V2_UNSPEC, 0)
  const { src, dst, family } = resolve(info)
  const addrLen = family === 4 ? 12 : 36
  const out = v2Header(V2_PROXY, family === 4 ? V2_TCP4 : V2_TCP6, addrLen)
  let off = 16
  out.set(src.bytes, off)
  off += src.bytes.length
  out.set(dst.bytes, off)
  off += dst.bytes.length
  out.writeUInt16BE(info.source.port, off)
  out.writeUInt16BE(info.destination.port, off + 2)
  return out
}

/** A version 2 LOCAL header (a connection made by the proxy itself, e.g. a health check). */
export function encodeProxyV2Local (): Buffer {
  return v2Header(V2_LOCAL, V2_UNSPEC, 0)
}

/** Either version, as configured per tunnel. */
export function encodeProxyHeader (version: 1 | 2, info: ProxyInfo | undefined): Buffer {
  return version === 1 ? encodeProxyV1(info) : encodeProxyV2(info)
}

function v2Header (verCmd: number, famProto: number, addrLen: number): Buffer {
  const out = Buffer.alloc(16 + addrLen)
  PROXY_V2_SIGNATURE.copy(out, 0)
  out[12] = verCmd
  out[13] = famProto
  out.writeUInt16BE(addrLen, 14)
  return out
}

function resolve (info: ProxyInfo): { src: IpAddress, dst: IpAddress, family: 4 | 6 } {
  const src = endpoint(info.source, 'source')
  const dst = endpoint(info.destination, 'destination')
  if (src.family === dst.family) return { src, dst, family: src.family }
  return { src: toV6(src), dst: toV6(dst), family: 6 }
}

function endpoint (e: Endpoint, what: string): IpAddress {
  const ip = parseIp(e.address)
  if (ip === undefined) throw new TypeError(`PROXY header: ${what} address ${JSON.stringify(e.address)} is not an IP address`)
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) throw new TypeError(`PROXY header: ${what} port ${e.port} is not 0–65535`)
  return ip
}

function toV6 (ip: IpAddress): IpAddress {
  if (ip.family === 6) return ip
  const bytes = new Uint8Array(16)
  bytes[10] = 0xff
  bytes[11] = 0xff
  bytes.set(ip.bytes, 12)
  return { family: 6, bytes }
}
