/*
 * The realm's EL2 vector table.  A realm runs at EL1 with our EL2
 * configuration; every exception it takes to EL2 (a trapped SMC, a data
 * abort on an unmapped IPA, an interrupt, ...) lands here, and each entry
 * is a single SMC: it reaches EL3 with ELR_EL3 = entry + 4, from which the
 * monitor tells which vector fired, while ESR_EL2, FAR_EL2, HPFAR_EL2,
 * ELR_EL2 and SPSR_EL2 still hold the realm's syndrome.  The page is
 * loaded by Python into the carve-out and is Realm PAS, so R-EL2 can fetch
 * it with its MMU off.  Built as a separate binary (rel2_vectors.bin).
 */
    .section .text, "ax"
    .global rel2_vectors
rel2_vectors:
    .rept 16
    .balign 0x80
    smc     #0
    .endr
    .balign 0x800
