/*
 * QEMU TCG plugin: exact instruction counts between two marker functions.
 *
 *   qemu-system-arm ... -plugin icount.so,start=0xADDR,stop=0xADDR -d plugin -D out.log
 *
 * Every time the instruction at `start` executes, the count restarts; every time the one at
 * `stop` executes, "icount-plugin interval <n>" is written to the QEMU log (n = instructions
 * executed in between, counted per translation block, so the marker blocks themselves are
 * included: a few instructions). The addresses come from `nm` of the ELF (Thumb bit ignored).
 *
 * Debian packages no qemu-plugin.h: the few declarations of plugin API version 1 (QEMU 7.2)
 * used here are written out below, as docs/firmware-toolchain.md describes.
 * Build: gcc -shared -fPIC -O2 -o icount.so icount.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t start_addr, stop_addr;
static uint64_t count;     /* instructions of every executed block, single vCPU */
static uint64_t start_count;
static int started;

static void on_tb(unsigned int vcpu, void *n) {
    (void)vcpu;
    count += (uint64_t)(uintptr_t)n;
}

static void on_start(unsigned int vcpu, void *u) {
    (void)vcpu;
    (void)u;
    start_count = count;
    started = 1;
}

static void on_stop(unsigned int vcpu, void *u) {
    (void)vcpu;
    (void)u;
    if (!started) {
        return;
    }
    char line[64];
    snprintf(line, sizeof line, "icount-plugin interval %llu\n",
             (unsigned long long)(count - start_count));
    qemu_plugin_outs(line);
    started = 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t a = qemu_plugin_insn_vaddr(insn);
        if (a == start_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (a == stop_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "start=", 6) == 0) {
            start_addr = strtoull(argv[i] + 6, NULL, 0) & ~1ull;
        } else if (strncmp(argv[i], "stop=", 5) == 0) {
            stop_addr = strtoull(argv[i] + 5, NULL, 0) & ~1ull;
        } else {
            fprintf(stderr, "icount-plugin: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (start_addr == 0 || stop_addr == 0 || start_addr == stop_addr) {
        fprintf(stderr, "icount-plugin: needs start=ADDR,stop=ADDR (different)\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    return 0;
}
