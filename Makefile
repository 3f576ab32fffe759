# ballast - Docker volume plugin. `make` builds, `make check` installs what the
# tests need and runs them all, `make run` runs ballastd in the foreground.

CC ?= cc
PKG_CONFIG ?= pkg-config
BUILD ?= build
PREFIX ?= /usr/local
VERSION := 0.1.0

DAEMON_PKGS := libmicrohttpd jansson mount inih
CLI_PKGS := libcurl jansson inih
HELPER_PKGS := mount blkid
TEST_PKGS := cmocka

CFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla
# -fPIC: the shared backends' objects go into modules (backends/NAME.so)
BASEFLAGS := -std=gnu11 -D_GNU_SOURCE -DBALLAST_VERSION='"$(VERSION)"' -pthread -MMD -MP -fPIC
ifneq ($(CRASHPOINTS),)
BASEFLAGS += -DBALLAST_CRASH_POINTS
endif
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ALL_CFLAGS = $(BASEFLAGS) $(WARNFLAGS) $(CFLAGS) $(SANFLAGS)
ALL_LDFLAGS = -pthread $(LDFLAGS) $(SANFLAGS)

pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

# The layers, one folder each; arrows only point down, and each layer's
# include path shows only the layers below it (an upward #include does not
# compile):
#   lib/       utilities every program links; depends on nothing of ours
#   backends/  the backend contract, the registry, one family of files per
#              backend, common.c; depends on lib/
#   daemon/    ballastd: http, api, catalog, metrics; depends on backends/, lib/
#   cli/       ballast; depends on lib/
#   helpers/   mount.ballast and ballast-rbd-map; depend on lib/
LIB_SRCS := $(wildcard lib/*.c)
BACKEND_SRCS := backends/registry.c backends/common.c backends/local.c backends/gl_reject.c
DAEMON_CORE_SRCS := $(filter-out daemon/ballastd.c,$(wildcard daemon/*.c))
$(BUILD)/obj/lib/%.o: LAYER_INC := -Ilib
$(BUILD)/obj/backends/%.o: LAYER_INC := -Ibackends -Ilib
$(BUILD)/obj/daemon/%.o: LAYER_INC := -Idaemon -Ibackends -Ilib
$(BUILD)/obj/cli/%.o: LAYER_INC := -Icli -Ilib
$(BUILD)/obj/helpers/%.o: LAYER_INC := -Ihelpers -Ilib
TEST_INC := -Idaemon -Ibackends -Ilib -Ihelpers
$(BUILD)/obj/tests/%.o: LAYER_INC := $(TEST_INC)

# Shared backends are built when their libraries are there (tests/deps.sh
# installs them, so `make check` always has them); WITH_GLUSTER=0 leaves one
# out on purpose.
# Each is a module ballastd loads (dlopen) only when its config uses it:
# $(BUILD)/backends/NAME.so, installed in $(PREFIX)/lib/ballast.
WITH_GLUSTER ?= $(shell $(PKG_CONFIG) --exists glusterfs-api && echo 1 || echo 0)
ifeq ($(WITH_GLUSTER),1)
GLUSTER_MOD_SRCS := $(wildcard backends/gluster*.c)
GLUSTER_PKGS := glusterfs-api
BASEFLAGS += -DHAVE_GLUSTER
MODULES += $(BUILD)/backends/gluster.so
endif

# The rbd backend and its FUSE mapper, when librbd is there (WITH_RBD=0 leaves it out).
WITH_RBD ?= $(shell test -e /usr/include/rbd/librbd.h && test -e /usr/include/fuse3/fuse.h && echo 1 || echo 0)
ifeq ($(WITH_RBD),1)
RBD_MOD_SRCS := $(wildcard backends/rbd*.c)
BASEFLAGS += -DHAVE_RBD
RBD_LIBS := -lrbd -lrados
MODULES += $(BUILD)/backends/rbd.so
endif
MOD_SRCS := $(RBD_MOD_SRCS) $(GLUSTER_MOD_SRCS)
# The core objects: ballastd's, and the modules' too for the unit tests and
# fuzzers, which link them in rather than load them.
CORE_SRCS := $(DAEMON_CORE_SRCS) $(BACKEND_SRCS) $(MOD_SRCS) $(LIB_SRCS)
# What everything linked with the core objects needs; ballastd itself only
# BASE_LIBS (the modules bring their own).
BASE_LIBS = $(call pc_libs,$(DAEMON_PKGS))
DAEMON_LIBS = $(BASE_LIBS) $(call pc_libs,$(GLUSTER_PKGS)) $(RBD_LIBS)
DAEMON_SRCS := $(filter-out $(MOD_SRCS),$(CORE_SRCS)) daemon/ballastd.c
CLI_SRCS := $(wildcard cli/*.c)
HELPER_SRCS := $(filter-out helpers/rbd_fuse%.c,$(wildcard helpers/*.c))
RBD_MAP_SRCS := $(wildcard helpers/rbd_fuse*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJS := $(call obj,$(CORE_SRCS))
UNIT_BINS := $(patsubst tests/unit/test_%.c,$(BUILD)/tests/unit_%,$(UNIT_SRCS))

BINS := $(BUILD)/ballastd $(BUILD)/ballast $(BUILD)/mount.ballast $(MODULES)
ifeq ($(WITH_RBD),1)
BINS += $(BUILD)/ballast-rbd-map $(BUILD)/tests/rbd_writer
endif

.PHONY: chaos all deps check unit run clean install deb plugin fuzz sanitize valgrind bench soak format mutants
all: $(BINS)

# Objects depend on the flags they were built with: a build dir reused with
# other flags (SANITIZE, CRASHPOINTS, a backend found) is rebuilt.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_TEXT := $(ALL_CFLAGS) $(DAEMON_PKGS) $(GLUSTER_PKGS)
ifneq ($(file < $(FLAGS_STAMP)),$(FLAGS_TEXT))
$(shell mkdir -p $(BUILD))
$(file > $(FLAGS_STAMP),$(FLAGS_TEXT))
endif

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LAYER_INC) $(call pc_cflags,$(DAEMON_PKGS) $(GLUSTER_PKGS) $(CLI_PKGS) $(HELPER_PKGS)) -c $< -o $@

# -rdynamic: the modules call ballastd's own functions (lib/, common.c).
$(BUILD)/ballastd: $(call obj,$(DAEMON_SRCS))
	$(CC) $^ -o $@ $(ALL_LDFLAGS) -rdynamic $(BASE_LIBS)

$(BUILD)/backends/rbd.so: $(call obj,$(RBD_MOD_SRCS))
	@mkdir -p $(dir $@)
	$(CC) -shared $^ -o $@ $(ALL_LDFLAGS) $(RBD_LIBS) $(call pc_libs,jansson)

$(BUILD)/backends/gluster.so: $(call obj,$(GLUSTER_MOD_SRCS))
	@mkdir -p $(dir $@)
	$(CC) -shared $^ -o $@ $(ALL_LDFLAGS) $(call pc_libs,$(GLUSTER_PKGS) jansson)

# lib/ as an archive: each program takes only the objects it uses.
$(BUILD)/libballast.a: $(call obj,$(LIB_SRCS))
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/ballast: $(call obj,$(CLI_SRCS)) $(BUILD)/libballast.a
	$(CC) $^ -o $@ $(ALL_LDFLAGS) $(call pc_libs,$(CLI_PKGS))

$(BUILD)/mount.ballast: $(call obj,$(HELPER_SRCS)) $(BUILD)/libballast.a
	$(CC) $^ -o $@ $(ALL_LDFLAGS) $(call pc_libs,$(HELPER_PKGS))

# The unit test of mount.ballast's checks links its objects but main's.
HELPER_LIB_SRCS := $(filter-out helpers/mount_ballast.c,$(HELPER_SRCS))
HELPER_LIB_OBJS = $(call obj,$(HELPER_LIB_SRCS))
LIB_ARCHIVE = $(BUILD)/libballast.a
$(BUILD)/tests/unit_mount_helper: $(BUILD)/obj/tests/unit/test_mount_helper.o $(call obj,$(HELPER_LIB_SRCS)) \
		$(BUILD)/libballast.a
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(ALL_LDFLAGS) $(call pc_libs,$(HELPER_PKGS) $(TEST_PKGS))

$(BUILD)/ballast-rbd-map: $(call obj,$(RBD_MAP_SRCS)) $(BUILD)/libballast.a
	$(CC) $^ -o $@ $(ALL_LDFLAGS) $(call pc_libs,fuse3) -lrbd -lrados

$(call obj,$(RBD_MAP_SRCS)): $(BUILD)/obj/helpers/rbd_fuse%.o: helpers/rbd_fuse%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LAYER_INC) $(call pc_cflags,fuse3) -c $< -o $@

$(BUILD)/tests/rbd_writer: tests/rbd_writer.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) -lrbd -lrados

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_INC) -Wno-missing-prototypes -Wno-format-truncation $(call pc_cflags,$(DAEMON_PKGS) $(GLUSTER_PKGS) $(TEST_PKGS)) -c $< -o $@

$(BUILD)/tests/unit_%: $(BUILD)/obj/tests/unit/test_%.o $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(ALL_LDFLAGS) $(DAEMON_LIBS) $(call pc_libs,$(TEST_PKGS))

unit: $(UNIT_BINS)

# Installs (apt) every package the build and the tests need; quiet when all
# are there already.
deps:
	@bash tests/deps.sh

# Everything: unit and integration tests (run-all.sh sums them into one
# line), then the same groups under ASan/UBSan, valgrind on the unit tests,
# and a short fuzz run. With SANITIZE set only the sanitized run.
FUZZ_SECONDS ?= 30
check: deps
ifneq ($(SANITIZE),)
	bash tests/run-sanitized.sh
else
	$(MAKE) all unit
	BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) STRICT_SKIPS=1 bash tests/run-all.sh --extras
endif

fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

sanitize:
	bash tests/run-sanitized.sh

valgrind:
	bash tests/run-valgrind.sh

# Build and run ballastd in the foreground with the default config (local
# backend, /run/docker/plugins/ballast.sock), so dockerd finds it at once.
run:
	@bash tests/deps.sh --build
	$(MAKE) all
	exec $(BUILD)/ballastd

# Install layout: binaries, mount.ballast where mount(8) looks for helpers,
# an example config (never over an existing one), systemd units, man pages.
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
HELPERDIR ?= /sbin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
# ballastd looks for its modules in ../lib/ballast from its own directory
MODULEDIR ?= $(PREFIX)/lib/ballast

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(HELPERDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/ballast
	install -m 0755 $(BUILD)/ballastd $(DESTDIR)$(SBINDIR)/ballastd
	install -m 0755 $(BUILD)/ballast $(DESTDIR)$(BINDIR)/ballast
	install -m 0755 $(BUILD)/mount.ballast $(DESTDIR)$(HELPERDIR)/mount.ballast
	$(if $(MODULES),install -d $(DESTDIR)$(MODULEDIR) && install -m 0644 $(MODULES) $(DESTDIR)$(MODULEDIR)/)
	install -m 0644 man/ballast.1 $(DESTDIR)$(MANDIR)/man1/ballast.1
	install -m 0644 man/ballastd.8 man/mount.ballast.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 packaging/systemd/ballast.socket $(DESTDIR)$(UNITDIR)/ballast.socket
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/systemd/ballast.service > $(DESTDIR)$(UNITDIR)/ballast.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ballast.service
	test -e $(DESTDIR)$(SYSCONFDIR)/ballast/ballast.conf || \
		install -m 0644 packaging/ballast.conf $(DESTDIR)$(SYSCONFDIR)/ballast/ballast.conf

# The Debian package (dpkg-buildpackage -us -uc -b), into $(BUILD)/deb.
deb:
	bash packaging/build-deb.sh $(BUILD)/deb

# The managed Docker plugin: assemble its rootfs from the built binaries and
# the libraries they need, then `docker plugin create` on the local dockerd.
PLUGIN_NAME ?= ballast:$(VERSION)
plugin: all
	bash packaging/docker-plugin/build.sh $(BUILD) $(BUILD)/plugin
	docker plugin create $(PLUGIN_NAME) $(BUILD)/plugin

# Benchmarks: a private dockerd and ballastd, every comparison interleaved
# over BENCH_ROUNDS rounds; prints a table and writes bench/results/latest.json.
# Needs root and the set-up of `make check`.
$(BUILD)/bench/loadgen: bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -pthread $(WARNFLAGS) $(CFLAGS) $< -o $@

bench: deps all $(BUILD)/bench/loadgen
	BUILD=$(BUILD) bash bench/run.sh

# Not in CI: SOAK_HANDOFFS (100) database hand-offs per backend (rbd,
# gluster-exclusive) between two simulated hosts, alternating A -> B -> A,
# ending with `handoffs: N ok, L lost commits, D double-writer windows`.
SOAK_HANDOFFS ?= 100
soak: deps all
	BALLAST_BUILD=$(abspath $(BUILD)) HANDOFF_SOAK=$(SOAK_HANDOFFS) bash tests/integration/handoff.sh

# A random schedule of operations and faults drawn from each seed, with a
# PostgreSQL database moving between the two simulated hosts and a checker
# (tests/integration/chaos.sh; make check runs a few short seeds). By hand:
#   make chaos SEED=7 STEPS=50 BACKEND=rbd   (SEED and BACKEND take lists)
SEED ?= 1
STEPS ?= 20
BACKEND ?= rbd gluster
chaos: deps all
	BALLAST_BUILD=$(abspath $(BUILD)) CHAOS_SEEDS="$(SEED)" CHAOS_STEPS=$(STEPS) \
		CHAOS_BACKENDS="$(BACKEND)" bash tests/integration/chaos.sh

# Break the code each safety test guards, once each, and check that the
# test catches it (tests/mutants.sh; slow, by hand: MUTANTS="name ..." for some).
mutants: deps
	bash tests/mutants.sh

# Apply .clang-format to every C file (the layers group checks it).
format:
	clang-format -i $(wildcard lib/*.[ch] backends/*.[ch] daemon/*.[ch] cli/*.[ch] helpers/*.[ch] \
		tests/unit/*.[ch] tests/fuzz/*.c)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
