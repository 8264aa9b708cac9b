"""A user's EL3 firmware (TF-A + TF-RMM) as the platform's firmware: its
flash image, the FIP in it, and our hoststub as its BL33."""
