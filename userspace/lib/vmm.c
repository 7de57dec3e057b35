// SPDX-License-Identifier: GPL-2.0
/*
 * A small VMM for kvmig's tests, benchmarks and demo; see vmm.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"

#define say(...) fprintf(stderr, "vmm: " __VA_ARGS__)

static int fail(const char *what)
{
	int err = errno;

	say("%s: %s\n", what, strerror(err));
	return -err;
}

static int enable_cap(struct vmm *vmm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg0 } };

	if (ioctl(vmm->vm, KVM_ENABLE_CAP, &ec))
		return fail("KVM_ENABLE_CAP");
	return 0;
}

static int setup_dirty(struct vmm *vmm)
{
	const struct vmm_config *c = &vmm->cfg;
	int cap, max;

	if (c->dirty == VMM_DIRTY_BITMAP) {
		if (!(ioctl(vmm->kvm, KVM_CHECK_EXTENSION,
			    KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
		      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
			say("no KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2\n");
			return -EOPNOTSUPP;
		}
		return enable_cap(vmm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
				  (c->initially_set ?
				   KVM_DIRTY_LOG_INITIALLY_SET : 0));
	}

	cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	max = ioctl(vmm->vm, KVM_CHECK_EXTENSION, cap);
	if (max <= 0) {
		cap = KVM_CAP_DIRTY_LOG_RING;
		max = ioctl(vmm->vm, KVM_CHECK_EXTENSION, cap);
	}
	if (max <= 0) {
		say("no dirty ring support\n");
		return -EOPNOTSUPP;
	}
	if (vmm->cfg.ring_bytes > (uint32_t)max) {
		say("ring of %u bytes, KVM allows %d\n", vmm->cfg.ring_bytes,
		    max);
		return -EINVAL;
	}
	vmm->ring_entries = vmm->cfg.ring_bytes / sizeof(struct kvm_dirty_gfn);
	return enable_cap(vmm, cap, vmm->cfg.ring_bytes);
}

static int add_slot(struct vmm *vmm, uint32_t id, uint64_t gpa,
		    uint64_t size, void *hva, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = id,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vmm->vm, KVM_SET_USER_MEMORY_REGION, &r))
		return fail("KVM_SET_USER_MEMORY_REGION");
	return 0;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Guest RAM in a memfd, shared, as QEMU's memory-backend-memfd: shmem has
 * no zero page, so a read fault allocates. The mapping keeps the file.
 */
static void *map_memfd(size_t size)
{
	int fd = memfd_create("vmm-ram", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, size)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void throttle_init(struct vmm_throttle *t)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&t->lock, NULL);
	/* Its waits end at CLOCK_MONOTONIC deadlines, as now_ns() counts. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &ca);
	pthread_condattr_destroy(&ca);
}

static int setup_vcpu(struct vmm *vmm, unsigned int i)
{
	struct vmm_vcpu *v = &vmm->vcpus[i];
	struct kvm_segment seg = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10,
		.type = 3, .present = 1, .db = 1, .s = 1, .g = 1,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = VMM_CODE_GPA,
		.rsi = VMM_MBOX_GPA + i * VMM_MBOX_SIZE,
		.rflags = 0x2,
	};

	v->vmm = vmm;
	v->index = i;
	v->fd = ioctl(vmm->vm, KVM_CREATE_VCPU, i);
	if (v->fd < 0)
		return fail("KVM_CREATE_VCPU");
	v->run = mmap(NULL, vmm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return fail("mmap kvm_run");
	}
	if (vmm->cfg.dirty == VMM_DIRTY_RING) {
		v->ring = mmap(NULL, vmm->cfg.ring_bytes,
			       PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
			       (off_t)vmm->page_size * KVM_DIRTY_LOG_PAGE_OFFSET);
		if (v->ring == MAP_FAILED) {
			v->ring = NULL;
			return fail("mmap dirty ring");
		}
	}

	if (vmm->cfg.cpuid && ioctl(v->fd, KVM_SET_CPUID2, vmm->cfg.cpuid))
		return fail("KVM_SET_CPUID2");

	/* 32-bit protected mode, flat segments, no paging. */
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return fail("KVM_GET_SREGS");
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	seg.selector = 0x8;
	seg.type = 0xb;
	sregs.cs = seg;
	sregs.cr0 |= 1;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
		return fail("KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_REGS, &regs))
		return fail("KVM_SET_REGS");
	return 0;
}

struct kvm_cpuid2 *vmm_supported_cpuid(void)
{
	unsigned int n = 256;	/* KVM_MAX_CPUID_ENTRIES */
	struct kvm_cpuid2 *c;
	int kvm, err;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return NULL;
	c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	if (!c) {
		close(kvm);
		errno = ENOMEM;
		return NULL;
	}
	c->nent = n;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c)) {
		err = errno;
		free(c);
		close(kvm);
		errno = err;
		return NULL;
	}
	close(kvm);
	return c;
}

int vmm_create(struct vmm *vmm, const struct vmm_config *cfg)
{
	unsigned int i;
	int ret, size;

	memset(vmm, 0, sizeof(*vmm));
	vmm->kvm = vmm->vm = -1;
	for (i = 0; i < VMM_MAX_VCPUS; i++)
		vmm->vcpus[i].fd = -1;
	vmm->cfg = *cfg;
	if (!vmm->cfg.ring_bytes)
		vmm->cfg.ring_bytes = 65536;
	pthread_mutex_init(&vmm->ring_lock, NULL);
	throttle_init(&vmm->thr);
	vmm->page_size = getpagesize();

	if (!cfg->nr_vcpus || cfg->nr_vcpus > VMM_MAX_VCPUS ||
	    !cfg->nr_slots || cfg->nr_slots > VMM_MAX_SLOTS ||
	    !cfg->slot_size ||
	    cfg->slot_size > (cfg->nr_slots > 1 ? VMM_DATA_MAX : VMM_DATA_MAX_ONE) ||
	    cfg->slot_size % vmm->page_size) {
		say("bad configuration\n");
		return -EINVAL;
	}

	vmm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vmm->kvm < 0)
		return fail("/dev/kvm");
	vmm->vm = ioctl(vmm->kvm, KVM_CREATE_VM, 0);
	if (vmm->vm < 0)
		return fail("KVM_CREATE_VM");
	size = ioctl(vmm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		return fail("KVM_GET_VCPU_MMAP_SIZE");
	vmm->run_size = size;

	ret = setup_dirty(vmm);
	if (ret)
		return ret;

	/* Guest code and mailboxes: read-only for the guest, never dirty. */
	vmm->ctrl = map_anon(VMM_CTRL_SIZE);
	if (!vmm->ctrl)
		return fail("mmap control slot");
	ret = add_slot(vmm, VMM_CTRL_SLOT, 0, VMM_CTRL_SIZE, vmm->ctrl,
		       KVM_MEM_READONLY);
	if (ret)
		return ret;

	for (i = 0; i < cfg->nr_slots; i++) {
		struct vmm_slot *s = &vmm->slots[i];

		s->id = 2 * i + 1;	/* sparse ids, on purpose */
		s->gpa = (i + 1) * VMM_DATA_GPA;
		s->size = cfg->slot_size;
		s->hva = cfg->memfd ? map_memfd(s->size) : map_anon(s->size);
		if (!s->hva)
			return fail("mmap data slot");
		ret = add_slot(vmm, s->id, s->gpa, s->size, s->hva,
			       KVM_MEM_LOG_DIRTY_PAGES);
		if (ret)
			return ret;
		if (cfg->dirty == VMM_DIRTY_BITMAP) {
			vmm->bitmaps[i] = calloc(s->size / vmm->page_size / 64 + 1,
						 sizeof(uint64_t));
			if (!vmm->bitmaps[i])
				return -ENOMEM;
		}
	}

	for (i = 0; i < cfg->nr_vcpus; i++) {
		ret = setup_vcpu(vmm, i);
		if (ret)
			return ret;
	}
	return 0;
}

void vmm_destroy(struct vmm *vmm)
{
	unsigned int i;

	/* Its sleeps wait on thr.wake, and it reads a session of this VM. */
	vmm_throttle_stop(vmm);
	for (i = 0; i < VMM_MAX_VCPUS; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];

		if (v->ring)
			munmap(v->ring, vmm->cfg.ring_bytes);
		if (v->run)
			munmap(v->run, vmm->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	if (vmm->vm >= 0)
		close(vmm->vm);
	for (i = 0; i < VMM_MAX_SLOTS; i++) {
		if (vmm->slots[i].hva)
			munmap(vmm->slots[i].hva, vmm->slots[i].size);
		free(vmm->bitmaps[i]);
	}
	if (vmm->ctrl)
		munmap(vmm->ctrl, VMM_CTRL_SIZE);
	if (vmm->kvm >= 0)
		close(vmm->kvm);
	pthread_mutex_destroy(&vmm->ring_lock);
	pthread_cond_destroy(&vmm->thr.wake);
	pthread_mutex_destroy(&vmm->thr.lock);
	memset(vmm, 0, sizeof(*vmm));
	vmm->kvm = vmm->vm = -1;
}

int vmm_load(struct vmm *vmm, const void *code, size_t len)
{
	if (len > VMM_MBOX_GPA - VMM_CODE_GPA)
		return -E2BIG;
	memcpy(vmm->ctrl + VMM_CODE_GPA, code, len);
	return 0;
}

void *vmm_mbox(struct vmm *vmm, unsigned int vcpu)
{
	return vmm->ctrl + VMM_MBOX_GPA + vcpu * VMM_MBOX_SIZE;
}

struct vmm_slot *vmm_slot_of(struct vmm *vmm, uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		struct vmm_slot *s = &vmm->slots[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->size)
			return s;
	}
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* KVM_EXIT_DIRTY_RING_FULL: have the rings harvested, time the stall. */
static int ring_full(struct vmm_vcpu *v)
{
	struct vmm *vmm = v->vmm;
	uint64_t t0 = now_ns();
	unsigned long n;
	int ret;

	n = __atomic_fetch_add(&vmm->ring_full_exits, 1, __ATOMIC_RELAXED);
	if (!vmm->ring_full)
		return -ENOSPC;
	if (vmm->ring_full_parallel) {
		ret = vmm->ring_full(vmm, vmm->ring_full_arg);
	} else {
		pthread_mutex_lock(&vmm->ring_lock);
		ret = vmm->ring_full(vmm, vmm->ring_full_arg);
		pthread_mutex_unlock(&vmm->ring_lock);
	}
	/* Each exit has its own slot: no lock needed to fill it. */
	if (vmm->ring_stall_ns && n < vmm->ring_stall_cap)
		vmm->ring_stall_ns[n] = now_ns() - t0;
	return ret;
}

/*
 * The throttle applier (vmm_throttle_start). A kick sets the vCPU's
 * thr_due, then sends its thread VMM_KICK_SIGNAL; the thread sleeps in
 * throttle_pay() before its next KVM_RUN. The handler sets the thread's
 * kvm_run.immediate_exit, so that a kick that lands just before KVM_RUN
 * is not lost in a whole slice of guest time: that KVM_RUN returns
 * -EINTR at once, and the loop finds thr_due.
 *
 * KVM_RUN returns -EINTR on a signal with or without SA_RESTART (KVM
 * never has the call restarted). SA_RESTART is for the thread's other
 * calls: a kick sent just before the thread left its run loop may land
 * after, in whatever the thread does next.
 */
static __thread struct kvm_run *kick_run;

static void on_kick(int sig)
{
	struct kvm_run *run = kick_run;

	if (run)
		__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_RELAXED);
}

static struct timespec ts_of(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000ULL, .tv_nsec = ns % 1000000000ULL,
	};

	return ts;
}

/* The calling thread runs @v until kick_leave(): the ticker may kick it. */
static void kick_enter(struct vmm_vcpu *v)
{
	struct vmm_throttle *t = &v->vmm->thr;

	kick_run = v->run;
	pthread_mutex_lock(&t->lock);
	v->runner = pthread_self();
	v->in_run = true;
	pthread_mutex_unlock(&t->lock);
}

static void kick_leave(struct vmm_vcpu *v)
{
	struct vmm_throttle *t = &v->vmm->thr;

	pthread_mutex_lock(&t->lock);
	v->in_run = false;
	pthread_mutex_unlock(&t->lock);
	/* No kick is sent now; one on its way finds no kvm_run to mark. */
	kick_run = NULL;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&v->thr_due, false, __ATOMIC_RELAXED);
}

/*
 * Before each KVM_RUN: if the ticker kicked this vCPU, sleep its share,
 * pct / (100 - pct) slices from the kick. Counted from the kick, not from
 * now: a thread that comes late (it was not scheduled, or the kick found
 * it out of the guest) still gets its slice of run time before the next
 * kick, rather than two sleeps in a row. The sleep ends early when the
 * applier stops, so that the VMM can always pause its vCPUs at once.
 */
static void throttle_pay(struct vmm_vcpu *v)
{
	struct vmm *vmm = v->vmm;
	struct vmm_throttle *t = &vmm->thr;
	uint64_t t0, end, slept;
	struct timespec ts;
	uint32_t pct;

	/* Pairs with the release in kick_all(): then pct and kick_ns. */
	if (!__atomic_exchange_n(&v->thr_due, false, __ATOMIC_ACQUIRE))
		return;
	pct = __atomic_load_n(&t->pct, __ATOMIC_RELAXED);
	end = __atomic_load_n(&t->kick_ns, __ATOMIC_RELAXED) +
	      VMM_THROTTLE_SLICE_NS * pct / (100 - pct);
	t0 = now_ns();
	if (!pct || end <= t0)
		return;
	ts = ts_of(end);
	pthread_mutex_lock(&t->lock);
	/* 0: woken by the stop, or spuriously; ETIMEDOUT: paid. */
	while (!t->stop && !pthread_cond_timedwait(&t->wake, &t->lock, &ts))
		;
	pthread_mutex_unlock(&t->lock);
	slept = now_ns() - t0;
	__atomic_fetch_add(&v->throttle_slept_ns, slept, __ATOMIC_RELAXED);
	__atomic_fetch_add(&vmm->throttle_slept_ns, slept, __ATOMIC_RELAXED);
}

/* The share the session asks for, 0..99, or -errno. */
static int read_pct(int fd)
{
	struct kvmig_stats st;

	memset(&st, 0, sizeof(st));
	if (ioctl(fd, KVMIG_GET_STATS, &st))
		return -errno;
	return st.throttle_pct < 99 ? st.throttle_pct : 99;
}

/* Kick every vCPU that a thread runs now: only those threads exist. */
static void kick_all(struct vmm *vmm)
{
	unsigned int i;

	for (i = 0; i < vmm->cfg.nr_vcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];

		if (!v->in_run)
			continue;
		__atomic_store_n(&v->thr_due, true, __ATOMIC_RELEASE);
		pthread_kill(v->runner, VMM_KICK_SIGNAL);
	}
}

/*
 * Every period a kick: at pct percent a period is one slice of run time
 * and the sleep after it, SLICE / (1 - pct / 100) in all (QEMU's
 * cpu_throttle_timer_tick). The share is read once per period.
 */
static void *ticker(void *arg)
{
	struct vmm *vmm = arg;
	struct vmm_throttle *t = &vmm->thr;
	struct timespec next;
	uint64_t now;
	bool stop;
	int pct;

	do {
		pct = read_pct(t->fd);
		if (pct < 0) {
			say("throttle: KVMIG_GET_STATS: %s\n", strerror(-pct));
			t->err = pct;
			__atomic_store_n(&t->pct, 0, __ATOMIC_RELAXED);
			break;
		}
		now = now_ns();
		__atomic_store_n(&t->pct, pct, __ATOMIC_RELAXED);
		__atomic_store_n(&t->kick_ns, now, __ATOMIC_RELAXED);
		next = ts_of(now + VMM_THROTTLE_SLICE_NS * 100 / (100 - pct));
		pthread_mutex_lock(&t->lock);
		if (pct && !t->stop)
			kick_all(vmm);
		while (!t->stop &&
		       !pthread_cond_timedwait(&t->wake, &t->lock, &next))
			;
		stop = t->stop;
		pthread_mutex_unlock(&t->lock);
	} while (!stop);
	return NULL;
}

int vmm_throttle_start(struct vmm *vmm, int kvmig_fd)
{
	/*
	 * Installed for good: a kick still on its way after the stop must
	 * not meet SIGUSR2's default action, which ends the process.
	 */
	struct sigaction sa = { .sa_handler = on_kick, .sa_flags = SA_RESTART };
	struct vmm_throttle *t = &vmm->thr;
	int ret;

	if (t->running)
		return -EBUSY;
	if (vmm->cfg.dirty != VMM_DIRTY_BITMAP) {
		say("throttle: in ring mode kvmig throttles the vCPUs itself\n");
		return -EINVAL;
	}
	ret = read_pct(kvmig_fd);
	if (ret < 0) {
		say("throttle: KVMIG_GET_STATS: %s\n", strerror(-ret));
		return ret;
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(VMM_KICK_SIGNAL, &sa, NULL))
		return fail("sigaction");
	t->fd = kvmig_fd;
	t->err = 0;
	pthread_mutex_lock(&t->lock);
	t->stop = false;
	pthread_mutex_unlock(&t->lock);
	ret = pthread_create(&t->ticker, NULL, ticker, vmm);
	if (ret) {
		say("throttle: pthread_create: %s\n", strerror(ret));
		return -ret;
	}
	t->running = true;
	return 0;
}

int vmm_throttle_stop(struct vmm *vmm)
{
	struct vmm_throttle *t = &vmm->thr;

	if (!t->running)
		return 0;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->ticker, NULL);
	t->running = false;
	__atomic_store_n(&t->pct, 0, __ATOMIC_RELAXED);
	return t->err;
}

/* Run one vCPU until it reports the end of its round. */
static int run_loop(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;
	int ret;

	for (;;) {
		throttle_pay(v);
		if (ioctl(v->fd, KVM_RUN, 0)) {
			if (errno != EINTR)
				return fail("KVM_RUN");
			/*
			 * A kick, or another signal: thr_due says which.
			 * Cleared before thr_due is read, so that a kick
			 * after that read makes the next KVM_RUN return.
			 */
			__atomic_store_n(&run->immediate_exit, 0,
					 __ATOMIC_RELAXED);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			continue;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port == VMM_PORT_DONE &&
			    run->io.direction == KVM_EXIT_IO_OUT)
				return 0;
			say("vCPU %u: I/O on port %#x\n", v->index,
			    run->io.port);
			return -EIO;
		case KVM_EXIT_DIRTY_RING_FULL:
			ret = ring_full(v);
			if (ret) {
				say("vCPU %u: dirty ring full: %s\n",
				    v->index, strerror(-ret));
				return ret;
			}
			break;
		case KVM_EXIT_MMIO:
			say("vCPU %u: MMIO %s at %#llx\n", v->index,
			    run->mmio.is_write ? "write" : "read",
			    (unsigned long long)run->mmio.phys_addr);
			return -EFAULT;
		default:
			say("vCPU %u: exit reason %u\n", v->index,
			    run->exit_reason);
			return -EIO;
		}
	}
}

static int run_vcpu(struct vmm_vcpu *v)
{
	int ret;

	kick_enter(v);
	ret = run_loop(v);
	kick_leave(v);
	return ret;
}

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;

	v->err = run_vcpu(v);
	return NULL;
}

int vmm_run(struct vmm *vmm)
{
	unsigned int i, n = vmm->cfg.nr_vcpus;
	int ret = 0;

	if (n == 1)
		return run_vcpu(&vmm->vcpus[0]);

	for (i = 0; i < n; i++) {
		vmm->vcpus[i].err = 0;
		if (pthread_create(&vmm->vcpus[i].thread, NULL, vcpu_thread,
				   &vmm->vcpus[i])) {
			vmm->vcpus[i].err = -EAGAIN;
			break;
		}
	}
	n = i;
	for (i = 0; i < n; i++) {
		pthread_join(vmm->vcpus[i].thread, NULL);
		if (vmm->vcpus[i].err && !ret)
			ret = vmm->vcpus[i].err;
	}
	return ret;
}

long vmm_harvest_bitmap(struct vmm *vmm, vmm_dirty_fn fn, void *arg)
{
	unsigned int i;
	long pages = 0;

	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		struct vmm_slot *s = &vmm->slots[i];
		uint64_t npages = s->size / vmm->page_size;
		uint64_t *bm = vmm->bitmaps[i], w, words = (npages + 63) / 64;
		struct kvm_dirty_log get = { .slot = s->id, .dirty_bitmap = bm };
		struct kvm_clear_dirty_log clr = {
			.slot = s->id,
			.first_page = 0,
			.num_pages = npages,
			.dirty_bitmap = bm,
		};
		bool any = false;
		uint64_t j;

		if (ioctl(vmm->vm, KVM_GET_DIRTY_LOG, &get))
			return fail("KVM_GET_DIRTY_LOG");
		for (j = 0; j < words && !any; j++)
			any = bm[j];
		if (!any)
			continue;
		if (ioctl(vmm->vm, KVM_CLEAR_DIRTY_LOG, &clr))
			return fail("KVM_CLEAR_DIRTY_LOG");
		for (j = 0; j < words; j++) {
			for (w = bm[j]; w; w &= w - 1) {
				fn(arg, s->id, j * 64 + __builtin_ctzll(w));
				pages++;
			}
		}
	}
	return pages;
}

long vmm_reclaim_rings(struct vmm *vmm)
{
	uint32_t j, mask = vmm->ring_entries - 1;
	unsigned int i;
	long pages = 0;

	/*
	 * KVM publishes entries in order from its reset index, which we do
	 * not know: hand back every dirty one. KVM_RESET_DIRTY_RINGS then
	 * moves past exactly those, and our position follows the last.
	 */
	for (i = 0; i < vmm->cfg.nr_vcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];

		for (j = 0; j < vmm->ring_entries; j++) {
			struct kvm_dirty_gfn *e = &v->ring[j];

			if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) &
			      KVM_DIRTY_GFN_F_DIRTY))
				continue;
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
					 __ATOMIC_RELEASE);
			v->ring_fetch = (j + 1) & mask;
			pages++;
		}
	}
	if (pages && ioctl(vmm->vm, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return fail("KVM_RESET_DIRTY_RINGS");
	return pages;
}

long vmm_harvest_ring(struct vmm *vmm, vmm_dirty_fn fn, void *arg)
{
	uint32_t mask = vmm->ring_entries - 1;
	unsigned int i;
	long pages = 0;

	for (i = 0; i < vmm->cfg.nr_vcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];

		for (;;) {
			struct kvm_dirty_gfn *e = &v->ring[v->ring_fetch & mask];

			if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) &
			      KVM_DIRTY_GFN_F_DIRTY))
				break;
			fn(arg, e->slot, e->offset);
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
					 __ATOMIC_RELEASE);
			v->ring_fetch++;
			pages++;
		}
	}
	if (pages && ioctl(vmm->vm, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return fail("KVM_RESET_DIRTY_RINGS");
	return pages;
}
