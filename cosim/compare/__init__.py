"""`cosim compare`: the same scenario on our RMM and on a user's firmware
(TF-A + TF-RMM), recorded, normalised and compared (docs/firmware.md)."""
