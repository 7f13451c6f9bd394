/**
 * `mport/transport`: TLS listeners and connections with mport's settings, certificates and
 * fingerprints.
 *
 * @packageDocumentation
 */
export { ALPN_PROTOCOL, listenTls, connectTls, exportAuthBinding, type ListenTlsOptions, type TlsListener, type ConnectTlsOptions, type TlsConnection, type TrustMode } from './transport/tls.js'
export { generateSelfSigned, loadOrCreateCertificate, fingerprint, parseFingerprint, writeAtomic, type CertificatePair, type StoredCertificate } from './transport/certs.js'
export { KnownRelays, type KnownRelay } from './transport/known-relays.js'
