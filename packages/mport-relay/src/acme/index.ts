/** Certificates from an ACME CA for the relay's shared HTTPS port (see acme-certificates.ts). */
export { AcmeCertificates, type AcmeCertificatesOptions, type AcmeSettings, type AcmeStats, type AcmeClock } from './acme-certificates.js'
export { parseAllowList } from './allow-rule.js'
export type { StoredPair } from './certificate-files.js'
