/*
 * Single-instruction loads and stores of 1, 2, 4 and 8 bytes, as functions
 * named <prefix>_load<n>(addr) and <prefix>_store<n>(addr, value).  Each
 * access is exactly one instruction, so an exception handler can record a
 * fault and skip it (ELR + 4) and the caller sees a result, not a crash.
 * Shared by the hoststub and the realmstub.
 */
.macro define_accessors prefix
    .global \prefix\()_load1, \prefix\()_load2, \prefix\()_load4, \prefix\()_load8
\prefix\()_load1:
    ldrb    w0, [x0]
    ret
\prefix\()_load2:
    ldrh    w0, [x0]
    ret
\prefix\()_load4:
    ldr     w0, [x0]
    ret
\prefix\()_load8:
    ldr     x0, [x0]
    ret
    .global \prefix\()_store1, \prefix\()_store2, \prefix\()_store4, \prefix\()_store8
\prefix\()_store1:
    strb    w1, [x0]
    ret
\prefix\()_store2:
    strh    w1, [x0]
    ret
\prefix\()_store4:
    str     w1, [x0]
    ret
\prefix\()_store8:
    str     x1, [x0]
    ret
.endm
