/*
 * cca-cosim TCG plugin: the link between QEMU and the Python co-simulator.
 *
 *  - Doorbell.  The monitor's doorbell instruction (one HINT encoding, from
 *    cosim_layout.h) is instrumented at translation time.  When a vCPU at EL3
 *    executes it, the plugin sends a DOORBELL message on that vCPU's Unix
 *    socket and blocks the vCPU until Python answers; everything else
 *    crosses through shared guest RAM.  The same encoding executed below EL3
 *    is reported as an ATTACK and never forwarded.
 *  - GPT plugin mode (gpt=plugin).  Every load and store is checked against
 *    the PAS table Python shares (one byte per 4 KiB granule) and the world
 *    the vCPU runs in (tracked with the monitor's world-mark hints).  Memory
 *    callbacks run after the access: this is a tripwire, not a wall.
 *  - Halt (plugin GPT mode).  When Python answers a violation with STOP, the
 *    plugin itself holds every vCPU until Python lets them go: see hold().
 *  - Liveness.  A control connection is watched by a thread: when Python
 *    goes away, QEMU exits with a diagnosis instead of hanging.
 *
 * Arguments: sock=NAME (abstract Unix socket of the co-simulator),
 * gpt=off|plugin, pas=PATH, pas_base=PA, pas_size=BYTES (PAS table, plugin
 * mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cosim_layout.h"
#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = COSIM_PLUGIN_API_VERSION;

#define MAX_VCPUS ((unsigned)COSIM_MAX_CPUS)
#define GRANULE_SHIFT 12
#define WORLD_MARK_MASK (~(uint32_t)(3u << 5)) /* HINT CRm:op2 low bits = world */

struct request {
    uint32_t magic;
    uint16_t type;
    uint16_t vcpu;
    uint64_t pc;
    uint64_t arg[4];
} __attribute__((packed));

struct reply {
    uint32_t magic;
    uint16_t type;
    uint16_t world;
    uint64_t value;
} __attribute__((packed));

_Static_assert(sizeof(struct request) == 48, "request layout (PLUGIN_REQUEST_FORMAT)");
_Static_assert(sizeof(struct reply) == 16, "reply layout (PLUGIN_REPLY_FORMAT)");

static char sock_name[sizeof(((struct sockaddr_un *)0)->sun_path) - 1];
static int control_fd = -1;
static int vcpu_fd[MAX_VCPUS];
static GByteArray *regbuf[MAX_VCPUS];
static struct qemu_plugin_register *pstate_reg;
static volatile uint8_t world[MAX_VCPUS];

static int gpt_plugin;
static const uint8_t *pas_table;
static uint64_t pas_base, pas_size;

/* Non-zero while a violation holds the machine: see hold(). */
static int halting;

/* Which PAS each world may access (bit n = PAS n, numbered as GPI bits 1:0:
 * 0 Secure, 1 Non-secure, 2 Root, 3 Realm).  A realm reaches Non-secure
 * memory through unprotected IPAs; the monitor (Root) is trusted. */
static const uint8_t allowed[4] = {
    [WORLD_SECURE] = (1u << WORLD_SECURE) | (1u << WORLD_NONSECURE),
    [WORLD_NONSECURE] = 1u << WORLD_NONSECURE,
    [WORLD_ROOT] = 0xf,
    [WORLD_REALM] = (1u << WORLD_REALM) | (1u << WORLD_NONSECURE),
};

static void __attribute__((noreturn)) lost(int vcpu, const char *why)
{
    if (vcpu < 0)
        fprintf(stderr, "cosim plugin: lost the co-simulator (%s): QEMU exits\n", why);
    else
        fprintf(stderr, "cosim plugin: lost the co-simulator on vCPU %d (%s): QEMU exits\n",
                vcpu, why);
    fflush(stderr);
    _exit((int)PLUGIN_EXIT_LOST);
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static int recv_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static const char *io_error(void) { return errno ? strerror(errno) : "connection closed"; }

/* Poll for the reply for a short while before sleeping in recv(): Python
 * answers most doorbells within tens of microseconds, and a vCPU thread that
 * sleeps pays a wake-up on top.  Bounded, so an idle wait costs little. */
#define SPIN_POLLS 200

static int recv_reply(int fd, struct reply *rp)
{
    for (int i = 0; i < SPIN_POLLS; i++) {
        ssize_t n = recv(fd, rp, sizeof *rp, MSG_DONTWAIT | MSG_PEEK);
        if (n == (ssize_t)sizeof *rp || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
    }
    return recv_all(fd, rp, sizeof *rp);
}

static void exchange(int fd, int vcpu, const struct request *rq, struct reply *rp)
{
    errno = 0;
    if (!send_all(fd, rq, sizeof *rq) || !recv_reply(fd, rp))
        lost(vcpu, io_error());
    if (rp->magic != (uint32_t)PLUGIN_MAGIC)
        lost(vcpu, "bad reply magic");
}

static int connect_python(unsigned vcpu_field)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(sock_name);
    memcpy(addr.sun_path + 1, sock_name, len); /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    if (connect(fd, (struct sockaddr *)&addr, alen) < 0) {
        close(fd);
        return -1;
    }
    struct request rq = {.magic = (uint32_t)PLUGIN_MAGIC, .type = (uint16_t)PLUGIN_MSG_HELLO,
                         .vcpu = (uint16_t)vcpu_field, .arg = {PLUGIN_PROTOCOL_VERSION}};
    struct reply rp;
    exchange(fd, vcpu_field == PLUGIN_CONTROL_VCPU ? -1 : (int)vcpu_field, &rq, &rp);
    return fd;
}

static void transact(unsigned vcpu, struct request *rq, struct reply *rp)
{
    if (vcpu >= MAX_VCPUS)
        lost((int)vcpu, "vCPU index beyond the monitor's limit");
    if (vcpu_fd[vcpu] < 0) {
        vcpu_fd[vcpu] = connect_python(vcpu);
        if (vcpu_fd[vcpu] < 0)
            lost((int)vcpu, io_error());
    }
    rq->magic = (uint32_t)PLUGIN_MAGIC;
    rq->vcpu = (uint16_t)vcpu;
    exchange(vcpu_fd[vcpu], (int)vcpu, rq, rp);
    if (rp->world != (uint16_t)PLUGIN_WORLD_UNCHANGED)
        world[vcpu] = (uint8_t)(rp->world & 3);
}

static void *watchdog(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t n = recv(control_fd, buf, sizeof buf, 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        lost(-1, n == 0 ? "control connection closed" : strerror(errno));
    }
    return NULL;
}

/* PSTATE.EL of the vCPU running this callback (gdb's "cpsr" holds PSTATE
 * with EL in bits 3:2, Arm ARM C5.2.18 "SPSR_EL1" layout), or -1 if QEMU
 * cannot read it here. */
static int try_current_el(unsigned vcpu)
{
    GByteArray *buf = regbuf[vcpu];
    uint32_t v = 0;
    if (!buf || !pstate_reg)
        return -1;
    g_byte_array_set_size(buf, 0);
    if (qemu_plugin_read_register(pstate_reg, buf) < 4)
        return -1;
    memcpy(&v, buf->data, sizeof v);
    return (int)((v >> 2) & 3);
}

static unsigned current_el(unsigned vcpu)
{
    int el = try_current_el(vcpu);
    if (el < 0)
        lost((int)vcpu, "cannot read PSTATE");
    return (unsigned)el;
}

static void doorbell_cb(unsigned int vcpu, void *udata)
{
    unsigned el = current_el(vcpu);
    struct request rq = {.type = (uint16_t)(el == 3 ? PLUGIN_MSG_DOORBELL : PLUGIN_MSG_ATTACK),
                         .pc = (uint64_t)(uintptr_t)udata, .arg = {el}};
    struct reply rp;
    transact(vcpu, &rq, &rp);
}

static void world_mark_cb(unsigned int vcpu, void *udata)
{
    if (vcpu < MAX_VCPUS)
        world[vcpu] = (uint8_t)(uintptr_t)udata;
}

/*
 * Holding the machine after a violation.  QEMU pauses a vCPU (QMP stop, a
 * debugger attaching) only between translation blocks, and plugin API v4
 * cannot end a block early: after a `stop` the offender would run on to the
 * end of its block, more loads and stores, even an SMC taken to EL3.  So the
 * plugin holds the vCPUs itself, each blocked in a memory callback until
 * Python replies to its HELD message: the offender inside the callback of the
 * violating access (the access is done, no later instruction has run), every
 * other vCPU in the callback of its next load or store (that access done).
 * Testing `halting` there costs a predictable branch per access; a test at
 * the start of every block would also catch vCPUs that only compute in
 * registers, but it slowed plugin mode's Linux boot by about 15%.
 */
static void hold(unsigned vcpu, uint64_t pc, uint64_t offender)
{
    struct request rq = {.type = (uint16_t)PLUGIN_MSG_HELD, .pc = pc, .arg = {offender}};
    struct reply rp;
    transact(vcpu, &rq, &rp);
}

static void __attribute__((noinline)) report_violation(unsigned vcpu, qemu_plugin_meminfo_t info,
                                                       uint64_t vaddr, uint64_t pa, uint64_t pc)
{
    qemu_plugin_mem_value v = qemu_plugin_mem_get_value(info);
    uint64_t value = v.type == QEMU_PLUGIN_MEM_VALUE_U128 ? v.data.u128.low : v.data.u64;
    switch (v.type) {
    case QEMU_PLUGIN_MEM_VALUE_U8: value = v.data.u8; break;
    case QEMU_PLUGIN_MEM_VALUE_U16: value = v.data.u16; break;
    case QEMU_PLUGIN_MEM_VALUE_U32: value = v.data.u32; break;
    default: break;
    }
    uint64_t size = 1ull << qemu_plugin_mem_size_shift(info);
    int el = try_current_el(vcpu);
    uint64_t flags = size | (qemu_plugin_mem_is_store(info) ? VIOLATION_STORE : 0) |
                     ((uint64_t)world[vcpu] << VIOLATION_WORLD_SHIFT) |
                     ((uint64_t)(el < 0 ? VIOLATION_EL_UNKNOWN : (uint64_t)el) << VIOLATION_EL_SHIFT);
    struct request rq = {.type = (uint16_t)PLUGIN_MSG_VIOLATION, .pc = pc,
                         .arg = {pa, vaddr, flags, value}};
    struct reply rp;
    transact(vcpu, &rq, &rp);
    if (rp.type == (uint16_t)PLUGIN_REPLY_STOP) {
        __atomic_add_fetch(&halting, 1, __ATOMIC_SEQ_CST);
        hold(vcpu, pc, 1);
        __atomic_sub_fetch(&halting, 1, __ATOMIC_SEQ_CST);
    }
}

/* The per-access check: kept short and branch-light, it runs for every load
 * and store in plugin GPT mode. */
static void mem_cb(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    if (hw && !qemu_plugin_hwaddr_is_io(hw)) {
        uint64_t pa = qemu_plugin_hwaddr_phys_addr(hw);
        uint64_t off = pa - pas_base;
        if (off < pas_size) {
            uint8_t mask = allowed[world[vcpu] & 3];
            uint64_t last = off + (1ull << qemu_plugin_mem_size_shift(info)) - 1;
            if (last >= pas_size)
                last = off;
            if (!(mask >> pas_table[off >> GRANULE_SHIFT] & 1) ||
                !(mask >> pas_table[last >> GRANULE_SHIFT] & 1))
                report_violation(vcpu, info, vaddr, pa, (uint64_t)(uintptr_t)udata);
        }
    }
    if (__builtin_expect(__atomic_load_n(&halting, __ATOMIC_RELAXED), 0))
        hold(vcpu, (uint64_t)(uintptr_t)udata, 0);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word = 0;
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (qemu_plugin_insn_size(insn) == 4)
            qemu_plugin_insn_data(insn, &word, sizeof word);
        if (word == (uint32_t)COSIM_DOORBELL_INSN) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, doorbell_cb, QEMU_PLUGIN_CB_R_REGS,
                                                   (void *)(uintptr_t)pc);
            continue;
        }
        if (!gpt_plugin)
            continue;
        if ((word & WORLD_MARK_MASK) == (uint32_t)COSIM_WORLD_MARK_INSN_BASE) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, world_mark_cb, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)((word >> 5) & 3));
            continue;
        }
        qemu_plugin_register_vcpu_mem_cb(insn, mem_cb, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                         (void *)(uintptr_t)pc);
    }
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    (void)id;
    if (vcpu >= MAX_VCPUS) {
        fprintf(stderr, "cosim plugin: vCPU %u is beyond the %u the monitor supports\n", vcpu,
                MAX_VCPUS);
        _exit(2);
    }
    world[vcpu] = WORLD_ROOT; /* every CPU starts in the monitor at EL3 */
    regbuf[vcpu] = g_byte_array_new();
    if (pstate_reg)
        return;
    GArray *regs = qemu_plugin_get_registers();
    qemu_plugin_reg_descriptor *d = (qemu_plugin_reg_descriptor *)regs->data;
    for (unsigned i = 0; i < regs->len; i++)
        if (strcmp(d[i].name, "cpsr") == 0)
            pstate_reg = d[i].handle;
    g_array_free(regs, 1);
    if (!pstate_reg) {
        fprintf(stderr, "cosim plugin: QEMU exposes no 'cpsr' register: cannot tell the EL\n");
        _exit(2);
    }
}

static int refuse(const char *what)
{
    fprintf(stderr, "cosim plugin: %s\n", what);
    return -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return 0;
    *out = v;
    return 1;
}

static int map_pas_table(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "cosim plugin: cannot open PAS table '%s': %s\n", path, strerror(errno));
        return 0;
    }
    size_t len = (size_t)(pas_size >> GRANULE_SHIFT);
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < len) {
        fprintf(stderr, "cosim plugin: PAS table '%s' is shorter than %zu granules\n", path, len);
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "cosim plugin: cannot map PAS table: %s\n", strerror(errno));
        return 0;
    }
    pas_table = p;
    return 1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *pas_path = NULL;
    int have_base = 0;

    if (info->version.min > COSIM_PLUGIN_API_VERSION || info->version.cur < COSIM_PLUGIN_API_VERSION) {
        fprintf(stderr, "cosim plugin: QEMU offers plugin API v%d..v%d, this plugin needs v%d\n",
                info->version.min, info->version.cur, COSIM_PLUGIN_API_VERSION);
        return -1;
    }
    if (!info->system_emulation)
        return refuse("needs system emulation (qemu-system-aarch64), not user mode");
    if (strcmp(info->target_name, "aarch64") != 0) {
        fprintf(stderr, "cosim plugin: target is '%s', needs 'aarch64'\n", info->target_name);
        return -1;
    }
    if ((unsigned)info->system.max_vcpus > MAX_VCPUS) {
        fprintf(stderr, "cosim plugin: %d vCPUs requested, the monitor supports at most %u\n",
                info->system.max_vcpus, MAX_VCPUS);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "sock=", 5) == 0) {
            if (strlen(a + 5) == 0 || strlen(a + 5) >= sizeof sock_name)
                return refuse("sock= needs a socket name of 1..106 characters");
            strcpy(sock_name, a + 5);
        } else if (strcmp(a, "gpt=off") == 0) {
            gpt_plugin = 0;
        } else if (strcmp(a, "gpt=plugin") == 0) {
            gpt_plugin = 1;
        } else if (strncmp(a, "pas=", 4) == 0) {
            pas_path = a + 4;
        } else if (strncmp(a, "pas_base=", 9) == 0) {
            if (!parse_u64(a + 9, &pas_base))
                return refuse("pas_base= needs a number");
            have_base = 1;
        } else if (strncmp(a, "pas_size=", 9) == 0) {
            if (!parse_u64(a + 9, &pas_size) || pas_size == 0 || pas_size & 0xfff)
                return refuse("pas_size= needs a non-zero multiple of 4096");
        } else {
            fprintf(stderr, "cosim plugin: unknown argument '%s' (expected sock=NAME, "
                            "gpt=off|plugin, pas=PATH, pas_base=PA, pas_size=BYTES)\n", a);
            return -1;
        }
    }
    if (!sock_name[0])
        return refuse("missing sock=NAME (the co-simulator's socket)");
    if (gpt_plugin && (!pas_path || !have_base || !pas_size))
        return refuse("gpt=plugin needs pas=PATH, pas_base=PA and pas_size=BYTES");
    if (gpt_plugin && !map_pas_table(pas_path))
        return -1;

    for (unsigned i = 0; i < MAX_VCPUS; i++)
        vcpu_fd[i] = -1;
    control_fd = connect_python(PLUGIN_CONTROL_VCPU);
    if (control_fd < 0) {
        fprintf(stderr, "cosim plugin: cannot reach the co-simulator at socket '%s': %s\n",
                sock_name, strerror(errno));
        return -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) != 0)
        return refuse("cannot start the watchdog thread");
    pthread_detach(t);

    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    return 0;
}
