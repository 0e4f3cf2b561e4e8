"""Tests of wvds.ossl. Most run in a FIPS worker process: see support/fips_process.py."""
