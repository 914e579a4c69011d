/*
 * A QEMU TCG plugin (plugin API version 1, QEMU 7.2 and later) that counts the guest
 * instructions a program executes under qemu-user, for scripts/neon_insns.py: the NEON
 * kernels' instructions per 256 weights, a count that repeats exactly for the same binary
 * and inputs (QEMU's times say nothing about an ARM core's).
 *
 *   gcc -shared -fPIC -O2 -o libinsn.so scripts/qemu_insn_count.c
 *   qemu-aarch64 -plugin ./libinsn.so[,hot=N] PROGRAM ...
 *
 * Prints "guest instructions: N" on stderr at exit; with hot=N also the N translation blocks
 * that executed the most instructions (address, size, executions), to find a kernel's loop.
 * The declarations below are the few entry points of QEMU's plugin API this uses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

extern void qemu_plugin_register_vcpu_tb_trans_cb(
    qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(
    struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(
    qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *), void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* One guest thread is counted exactly; several would race on these (run with one thread). */
static uint64_t executed;

struct block { uint64_t vaddr, insns, runs; };
static struct block *blocks;
static size_t n_blocks, capacity;
static int hot;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    if (hot && n_blocks < capacity) {
        struct block *b = &blocks[n_blocks++];
        b->vaddr = qemu_plugin_tb_vaddr(tb);
        b->insns = n;
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->runs, 1);
    }
}

static int by_total(const void *a, const void *b) {
    const struct block *x = a, *y = b;
    uint64_t u = x->insns * x->runs, v = y->insns * y->runs;
    return u < v ? 1 : u > v ? -1 : 0;
}

static void on_exit_(qemu_plugin_id_t id, void *unused) {
    (void)id;
    (void)unused;
    fprintf(stderr, "guest instructions: %llu\n", (unsigned long long)executed);
    if (!hot)
        return;
    qsort(blocks, n_blocks, sizeof *blocks, by_total);
    for (size_t i = 0; i < n_blocks && i < (size_t)hot; i++)
        fprintf(stderr, "block %#llx: %llu instructions x %llu runs\n",
                (unsigned long long)blocks[i].vaddr, (unsigned long long)blocks[i].insns,
                (unsigned long long)blocks[i].runs);
}

__attribute__((visibility("default"))) int qemu_plugin_install(
    qemu_plugin_id_t id, const struct qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "hot=", 4))
            hot = atoi(argv[i] + 4);
    if (hot) {
        capacity = 1 << 20;
        blocks = calloc(capacity, sizeof *blocks);
        if (!blocks)
            return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_, NULL);
    return 0;
}
