"""est_service: certificate enrollment and renewal over EST (RFC 7030) for keys held by crypto_service.

The device key pair is generated, kept and used by crypto_service; this daemon
only ever sees public keys and signatures. Modules, one job each:

  config     config.json, validated field by field      errors    the exception types
  asn1       ASN.1 definitions asn1crypto lacks (ML-DSA, CSR attributes, RFC 9908 templates)
  x509       certificates and names: parsing, identity, validity
  chain      certification path validation (every signature checked by wvds.ossl, FIPS)
  pkcs7      certs-only PKCS#7 and the lenient base64 of RFC 8951
  keys       the device key in crypto_service: generate, public key, sign
  keyref     the key as a wvds key reference (key.ref.pem): OpenSSL's "private key" for TLS client auth
  csr        building and self-checking PKCS#10 requests
  csrattrs   reading /csrattrs (RFC 7030, RFC 8951 fixes, RFC 9908 templates) into a CSR policy
  http       the EST HTTP(S) client: TLS 1.3 + hybrid ML-KEM groups, auth (Basic, client
             certificate from files or the current one through the wvds provider), 202/Retry-After
  cacerts    trust anchors: explicit, bootstrap by fingerprint, root CA rollover
  enroll     one enrollment / re-enrollment, end to end, with verification of the result
  store      crash-safe files: atomic writes and the generation switch of a certificate/key pair
  state      per-certificate renewal state and the status file
  renewal    the daemon's schedule: renewal point, jitter, backoff, expiry fallback
  main       command line: run, once, status, check-config
"""
