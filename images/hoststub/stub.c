/*
 * hoststub request loop.  Each CPU asks Python for its next request with the
 * SiP call HOSTSTUB_NEXT (x1 = its request page, x2 = the secondary entry
 * point, x3 = its CPU index), executes it, records the result in the same
 * page and asks again.  Only EL3 may ring the doorbell, so the stub reaches
 * Python through an SMC that the monitor forwards.
 */
#include "arch.h"
#include "cosim_layout.h"
#include "pl011.h"

#define REQ(r, field) (*(volatile u64 *)((u64)(r) + STUB_##field##_OFF))
#define REQ_ARGS(r) ((u64 *)((u64)(r) + STUB_ARGS_OFF))
#define REQ_ARGS2(r) ((u64 *)((u64)(r) + STUB_ARGS2_OFF))
#define REQ_RET(r) ((u64 *)((u64)(r) + STUB_RET_OFF))
#define REQ_LIST(r, i) ((u64 *)((u64)(r) + STUB_LIST_OFF) + (i) * STUB_LIST_SMC_REGS)

struct fault {
    u64 pending, esr, far, elr;
};

u8 stub_stacks[COSIM_MAX_CPUS * 0x2000] __attribute__((aligned(16)));
static u8 pages[COSIM_MAX_CPUS][STUB_SIZE] __attribute__((aligned(4096)));
static struct fault faults[COSIM_MAX_CPUS];

void secondary_entry(void);
void stub_smc(const u64 *in, u64 *out);
u64 stub_smc4(u64 x0, u64 x1, u64 x2, u64 x3);
u64 stub_load1(u64), stub_load2(u64), stub_load4(u64), stub_load8(u64);
void stub_store1(u64, u64), stub_store2(u64, u64), stub_store4(u64, u64), stub_store8(u64, u64);
void stub_doorbell(void);
u64 stub_smc_check(const u64 *in, u64 *out, u64 marker);

static u64 this_cpu(void) { return read_sysreg(mpidr_el1) & 0xff; }

void stub_record_fault(u64 esr, u64 far, u64 elr)
{
    struct fault *f = &faults[this_cpu()];
    f->pending = 1;
    f->esr = esr;
    f->far = far;
    f->elr = elr;
}

void stub_unexpected(u64 esr, u64 elr)
{
    pl011_puts(COSIM_UART_NS_BASE, "hoststub: unexpected exception, ESR_EL2 ");
    pl011_puthex(COSIM_UART_NS_BASE, esr);
    pl011_puts(COSIM_UART_NS_BASE, " ELR_EL2 ");
    pl011_puthex(COSIM_UART_NS_BASE, elr);
    pl011_puts(COSIM_UART_NS_BASE, "\n");
}

static u64 counter(void)
{
    isb();
    return read_sysreg(cntvct_el0);
}

static u64 do_load(u64 addr, u64 size)
{
    switch (size) {
    case 1: return stub_load1(addr);
    case 2: return stub_load2(addr);
    case 4: return stub_load4(addr);
    default: return stub_load8(addr);
    }
}

static void do_store(u64 addr, u64 size, u64 value)
{
    switch (size) {
    case 1: stub_store1(addr, value); break;
    case 2: stub_store2(addr, value); break;
    case 4: stub_store4(addr, value); break;
    default: stub_store8(addr, value); break;
    }
}

static void mem_loop(u64 base, u64 len, u64 passes)
{
    for (u64 p = 0; p < passes; p++)
        for (u64 a = base; a + 8 <= base + len; a += 8)
            stub_store8(a, stub_load8(a) + 1);
}

static void execute(volatile u8 *r, struct fault *f)
{
    u64 op = REQ(r, OP), size = REQ(r, SIZE), addr = REQ(r, ADDR);
    u64 *ret = REQ_RET(r);
    f->pending = 0;
    REQ(r, STATUS) = STUB_STATUS_OK;
    switch (op) {
    case STUB_OP_SMC:
        stub_smc(REQ_ARGS(r), ret);
        break;
    case STUB_OP_SMC_LOOP: {
        u64 n = REQ(r, COUNT), t0 = counter();
        for (u64 i = 0; i < n; i++)
            stub_smc(REQ_ARGS(r), ret);
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_SMC_PAIR_LOOP: {
        u64 n = REQ(r, COUNT), t0 = counter();
        for (u64 i = 0; i < n; i++) {
            stub_smc(REQ_ARGS(r), ret);
            if (ret[0] != 0)
                break;
            stub_smc(REQ_ARGS2(r), ret);
            if (ret[0] != 0)
                break;
        }
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_SMC_LIST_LOOP: {
        /* Each entry holds x0..x7; stub_smc reads 18 input registers, so the
         * entry is copied into a zero-padded frame first. */
        u64 n = REQ(r, COUNT), len = REQ(r, SIZE), done = 0, t0;
        u64 in[18];
        if (len == 0 || len > STUB_LIST_MAX) {
            REQ(r, STATUS) = STUB_STATUS_BAD_REQUEST;
            return;
        }
        for (u64 k = STUB_LIST_SMC_REGS; k < 18; k++)
            in[k] = 0;
        t0 = counter();
        for (u64 i = 0; i < n; i++) {
            for (u64 j = 0; j < len; j++) {
                const u64 *e = REQ_LIST(r, j);
                for (u64 k = 0; k < STUB_LIST_SMC_REGS; k++)
                    in[k] = e[k];
                stub_smc(in, ret);
                if (ret[0] != 0)
                    goto list_done;
                done++;
            }
        }
list_done:
        REQ(r, TICKS) = counter() - t0;
        REQ(r, PROGRESS) = done;
        break;
    }
    case STUB_OP_LOAD:
    case STUB_OP_STORE:
        if ((size != 1 && size != 2 && size != 4 && size != 8) || (addr & (size - 1))) {
            REQ(r, STATUS) = STUB_STATUS_BAD_REQUEST;
            return;
        }
        if (op == STUB_OP_LOAD)
            ret[0] = do_load(addr, size);
        else
            do_store(addr, size, REQ(r, VALUE));
        break;
    case STUB_OP_MEM_LOOP: {
        u64 t0 = counter();
        mem_loop(addr, size, REQ(r, COUNT));
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_DOORBELL:
        stub_doorbell();
        break;
    case STUB_OP_YIELD:
        return;
    case STUB_OP_SMC_CHECK:
        REQ(r, TICKS) = stub_smc_check(REQ_ARGS(r), ret, REQ(r, VALUE));
        break;
    default:
        REQ(r, STATUS) = STUB_STATUS_BAD_REQUEST;
        return;
    }
    if (f->pending) {
        REQ(r, STATUS) = STUB_STATUS_FAULT;
        REQ(r, FAULT_ESR) = f->esr;
        REQ(r, FAULT_FAR) = f->far;
        REQ(r, FAULT_ELR) = f->elr;
    }
}

void stub_main(u64 cpu)
{
    volatile u8 *r = pages[cpu];
    if (cpu == 0) {
        pl011_init(COSIM_UART_NS_BASE);
        pl011_puts(COSIM_UART_NS_BASE, "hoststub: ready\n");
    }
    for (;;) {
        stub_smc4(SIP_HOSTSTUB_NEXT, (u64)r, (u64)secondary_entry, cpu);
        if (REQ(r, OP) == STUB_OP_EXIT)
            return;
        execute(r, &faults[cpu]);
        REQ(r, DONE_SEQ) = REQ(r, SEQ);
    }
}
