"""Device models of the realm VMM: what the realm reaches through MMIO exits
(a PL011 UART, a GICv3 distributor and redistributors) and the interrupt
state the VMM delivers through the list registers of RMI_REC_ENTER."""
