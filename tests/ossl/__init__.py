"""Tests of wvds.ossl. Most run in a FIPS worker process: see _child.py."""
