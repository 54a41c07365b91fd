"""Certificates: the satellite identity, CSR signing, fingerprints (owns `cryptography`)."""
