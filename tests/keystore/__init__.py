"""Key-store backend tests (file, TPM via swtpm, PKCS#11 via SoftHSMv2) against the real service."""
