# upgate build: `make` builds build/, `make test` runs every test, `make demo` shows it work.

# Debian packages the build, the tests and the demo need; `deps` installs the missing ones.
DEB_PKGS := pkg-config libsodium-dev libmsgpack-dev libev-dev libcriterion-dev libyaml-dev \
            liblmdb-dev libcurl4-openssl-dev libjansson-dev busybox clang libclang-rt-14-dev python3 \
            valgrind libmaxminddb-dev libmaxmind-db-writer-perl libsystemd-dev libmicrohttpd-dev \
            python3-prometheus-client prometheus iproute2 curl mandoc systemd strace \
            libhiredis-dev redis-server redis-sentinel \
            libowfat-dev zlib1g-dev autoconf automake libtool tzdata
# Only `make deb` needs these (install.mk): packaging tools.
DEB_PKGS_DEB := debhelper dpkg-dev lintian
SPEC ?= $(abspath ../shared/spec)

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

# The one version number: the programs' --version and the plugin's `version`.
UG_VERSION ?= 1.1.0

CC ?= cc
OPT ?= -O2
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wvla
CFLAGS += $(WARN) $(OPT) -g -fPIC -fvisibility=hidden -D_GNU_SOURCE -MMD -MP $(SANFLAGS) \
          -fstack-protector-strong -DUG_VERSION='"$(UG_VERSION)"' $(SYSTEMD_DEF)
LDFLAGS += $(SANFLAGS) -Wl,-z,relro,-z,now
# Include paths are per target (INC, set by folder below): a file sees the
# layers under it. This default is proto's, the plugin's and the client's.
INC := -Iproto -Iplugin -Iinclude

# The libraries the build links, as pkg-config module:Debian package
# (`check-deps` names what is missing), and those without a .pc as header:package.
PKG_DEPS := libsodium:libsodium-dev msgpack:libmsgpack-dev yaml-0.1:libyaml-dev lmdb:liblmdb-dev \
            libmaxminddb:libmaxminddb-dev jansson:libjansson-dev hiredis:libhiredis-dev \
            libcurl:libcurl4-openssl-dev libmicrohttpd:libmicrohttpd-dev
HDR_DEPS := ev.h:libev-dev

PKG_PROTO := libsodium msgpack
LIBS_PROTO = $(shell pkg-config --libs $(PKG_PROTO) 2>/dev/null)
LIBS_PLUGIN = $(shell pkg-config --libs $(PKG_PROTO) yaml-0.1 lmdb libmaxminddb jansson hiredis 2>/dev/null) -lpthread -lm
LIBS_CURL = $(shell pkg-config --libs libcurl 2>/dev/null)
LIBS_TEST = $(shell pkg-config --libs criterion jansson 2>/dev/null)
# sd_notify when libsystemd is there at build time; a no-op otherwise.
SYSTEMD_DEF := $(shell pkg-config --exists libsystemd 2>/dev/null && echo -DHAVE_SYSTEMD)
LIBS_SYSTEMD := $(if $(SYSTEMD_DEF),$(shell pkg-config --libs libsystemd 2>/dev/null))

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

OBJ := $(BUILD)/obj
$(OBJ)/proto/%.o: INC := -Iproto
$(OBJ)/plugin/%.o: INC := -Iproto -Iplugin
PROTO_SRC := $(wildcard proto/*.c)
PLUGIN_SRC := $(wildcard plugin/*.c plugin/*/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_HELPER_SRC := $(filter-out $(TEST_SRC) tests/bench%.c,$(wildcard tests/*.c))
# The version 2 vector generator (tests/gen/): its output is committed in tests/vectors-v2/.
GEN_V2 := $(BUILD)/gen-vectors-v2
GEN_V2_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/gen/*.c))

PROTO_OBJ := $(PROTO_SRC:%.c=$(OBJ)/%.o)
# The oracle (the old msgpack-c decoders) goes only into the fuzzers, its test and bench-decode.
ORACLE_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(wildcard fuzz/oracle/*.c))
PLUGIN_OBJ := $(PLUGIN_SRC:%.c=$(OBJ)/%.o)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(OBJ)/%.o)
TESTS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
PROTO_LIB := $(BUILD)/libugproto.a
PLUGIN_SO := $(BUILD)/upgate.so

# libupgate, the client library: client/*.c with proto/ linked in, hidden.
CLIENT_SRC := $(filter-out client/example.c,$(wildcard client/*.c))
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(OBJ)/%.o)
# libupgate applies deltas (client/patch.c): delta/'s objects go in, hidden like the rest.
$(OBJ)/client/%.o: INC := -Iproto -Iplugin -Iinclude -Idelta
CLIENT_VERSION := 1.1.0
CLIENT_SONAME := libupgate.so.1
CLIENT_A := $(BUILD)/libupgate.a
CLIENT_SO := $(BUILD)/libupgate.so.$(CLIENT_VERSION)
CLIENT_LIBS := $(CLIENT_A) $(CLIENT_SO) $(BUILD)/libupgate.so $(BUILD)/upgate.pc $(BUILD)/client-example
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib

# ---- the programs: one folder each ---------------------------------------------
# A program sees proto/, include/, common/, its own folder and, of plugin/,
# two headers (tests/layers.py): the ABI, upgate_plugin.h, and libugpolicy's,
# policy/ugpolicy.h. It links its folder's objects, the archives it names,
# libugcommon.a (common/: what several programs share) and libugproto.a.
PROG_INC := -Iproto -Iinclude -Icommon -Iplugin
COMMON_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(wildcard common/*.c))
COMMON_LIB := $(BUILD)/libugcommon.a
$(OBJ)/common/%.o: INC = $(PROG_INC)
# libugpolicy.a: the policy's value parsers and its GeoIP reader, for the
# programs that read policies as the plugin does (plugin/policy/ugpolicy.h).
POLICY_LIB := $(BUILD)/libugpolicy.a
POLICY_LIB_OBJ := $(patsubst %,$(OBJ)/plugin/policy/%.o,policy_values geo addr)
# delta/: delta packages' library, its suite's link line and bench rows
include delta/delta.mk
# libupgate-host and `make hosts` (opentracker, n2n's supernode)
include host/host.mk

# program(NAME, VAR, FOLDER[, ARCHIVES]): build/NAME from FOLDER/*.c (VAR_OBJ),
# ARCHIVES, libugcommon.a and libugproto.a, with LIBS_VAR.
define program
$(2)_OBJ := $$(patsubst %.c,$$(OBJ)/%.o,$$(wildcard $(3)/*.c))
PROGRAMS += $$(BUILD)/$(1)
$$(OBJ)/$(3)/%.o: INC = $$(PROG_INC) -I$(3)
$$(BUILD)/$(1): $$($(2)_OBJ) $(4) $$(COMMON_LIB) $$(PROTO_LIB)
	$$(call say,LD,$$@)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LIBS_$(2))
endef

# upgate-node, the reference host (node/), on libupgate-host (host/): the
# same loading, batches, commits and control socket as any other host.
LIBS_NODE = $(LIBS_PROTO) $(shell pkg-config --libs jansson libmicrohttpd 2>/dev/null) $(LIBS_SYSTEMD) -lev -ldl -lpthread
$(eval $(call program,upgate-node,NODE,node,$$(HOST_A)))

# upgate-ctl (ctl/): no plugin part; --policy finds the node's socket by
# the record the node keeps (common/runrec.c), not by reading the policy.
LIBS_CTL = $(LIBS_PROTO) $(shell pkg-config --libs jansson 2>/dev/null)
$(eval $(call program,upgate-ctl,CTL,ctl))

# upgate-sim (sim/): libugpolicy.a, so the simulator reads flags and regions
# exactly as the policy does; the plugin itself is dlopen()ed.
LIBS_SIM = $(LIBS_PROTO) $(shell pkg-config --libs yaml-0.1 libmaxminddb jansson 2>/dev/null) -ldl -lm
$(eval $(call program,upgate-sim,SIM,sim,$$(POLICY_LIB)))
# The sim's unit suite links its pure parts (the plugin's objects are in every test already).
SIM_CORE_OBJ := $(OBJ)/sim/simspec.o $(OBJ)/sim/simgeo.o $(OBJ)/sim/simedit.o $(OBJ)/sim/simcensus.o
# --plot FILE.png converts the SVG with rsvg-convert; the tests draw one too.
DEB_PKGS += librsvg2-bin

# upgate-keys and upgate-load (tools/).
LIBS_KEYS = $(LIBS_PROTO) $(LIBS_DELTA)
$(eval $(call program,upgate-keys,KEYS,tools/keys,$$(DELTA_LIB)))
$(OBJ)/tools/keys/%.o: INC = $(PROG_INC) -Itools/keys -Idelta
LIBS_LOAD = $(LIBS_PROTO) -lm
$(eval $(call program,upgate-load,LOAD,tools/load))

# upgate-peer, a thin program on libupgate (client/peer/; static: it runs from build/ as is).
LIBS_PEER = $(LIBS_PROTO) $(LIBS_DELTA) $(LIBS_CURL)
$(eval $(call program,upgate-peer,PEER,client/peer,$$(CLIENT_A)))

# Tests see every folder's headers.
$(OBJ)/tests/%.o: INC = -Iproto -Iplugin -Iinclude -Icommon -Isim -Itools/load -Idelta

.PHONY: all deps check-deps programs hosts install test check-unit check-e2e demo demo-fleet bench bench-sim bench-base \
        bench-decode fuzz fuzz-smoke clean check-layers vectors-v2
.DEFAULT_GOAL := all
.SECONDARY:

# `make` only builds: check-deps names what is missing; `make deps` installs it.
all: check-deps
	@$(MAKE) --no-print-directory programs

programs: $(PROTO_LIB) $(POLICY_LIB) $(PLUGIN_SO) $(PROGRAMS) $(CLIENT_LIBS) $(HOST_LIBS)

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "  DEPS    installing:" $$missing; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi

# One line per missing library (pkg-config's own words, then the Debian
# package to install), instead of a link error later.
check-deps:
	@command -v pkg-config >/dev/null || { echo "make: pkg-config is missing (Debian: pkg-config); make deps installs it" >&2; exit 1; }; \
	missing=; \
	for d in $(PKG_DEPS); do \
	  why=$$(pkg-config --print-errors --exists "$${d%%:*}" 2>&1) && continue; \
	  printf '%s\n' "$$why" | sed '/^$$/d; s/^/  /' >&2; missing="$$missing $${d%%:*} (Debian: $${d#*:})"; \
	done; \
	for d in $(HDR_DEPS); do \
	  printf '#include <%s>\n' "$${d%%:*}" | $(CC) -E -x c - >/dev/null 2>&1 && continue; \
	  echo "  no header <$${d%%:*}>" >&2; missing="$$missing $${d%%:*} (Debian: $${d#*:})"; \
	done; \
	if [ -n "$$missing" ]; then echo "make: missing libraries:$$missing; make deps installs them" >&2; exit 1; fi

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS) $(INC) -c -o $@ $<

$(PROTO_LIB): $(PROTO_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(COMMON_LIB): $(COMMON_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(POLICY_LIB): $(POLICY_LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

# The plugin exports exactly one symbol; everything else is hidden.
$(PLUGIN_SO): $(PLUGIN_OBJ) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) -shared $(LDFLAGS) -o $@ $(PLUGIN_OBJ) $(PROTO_LIB) $(LIBS_PLUGIN)

# The static archive is one relocatable object whose hidden symbols (all of
# proto/ and the library's internals) are made local: an application may
# have its own ug_hint_verify. The shared one exports what libupgate.map says.
$(BUILD)/libupgate.o: $(CLIENT_OBJ) $(DELTA_OBJ) $(PROTO_OBJ)
	$(call say,LD,$@)$(LD) -r -o $@ $^ && objcopy --localize-hidden $@

$(CLIENT_A): $(BUILD)/libupgate.o
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $<

$(CLIENT_SO): $(CLIENT_OBJ) $(DELTA_OBJ) $(PROTO_OBJ) client/libupgate.map
	$(call say,LD,$@)$(CC) -shared $(LDFLAGS) -Wl,-soname,$(CLIENT_SONAME) -Wl,--version-script=client/libupgate.map \
	  -Wl,--no-undefined -o $@ $(CLIENT_OBJ) $(DELTA_OBJ) $(PROTO_OBJ) $(LIBS_PROTO) $(LIBS_DELTA) $(LIBS_CURL)

$(BUILD)/libupgate.so: $(CLIENT_SO)
	$(Q)ln -sf $(notdir $(CLIENT_SO)) $(BUILD)/$(CLIENT_SONAME) && ln -sf $(CLIENT_SONAME) $@

$(BUILD)/upgate.pc: client/upgate.pc.in Makefile
	$(call say,GEN,$@)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(CLIENT_VERSION)|' $< > $@

# The header's example, built as an application would: the public header
# only, the shared library only (tests/test_client_example.c runs it).
$(BUILD)/client-example: client/example.c include/upgate/client.h $(BUILD)/libupgate.so
	$(call say,CC,$@)$(CC) $(WARN) $(OPT) $(SANFLAGS) -Iinclude $(shell pkg-config --cflags libcurl) -o $@ $< \
	  $(LDFLAGS) -L$(BUILD) -Wl,-rpath,'$$ORIGIN' -lupgate $(LIBS_CURL)

# Unit tests link the plugin's objects directly; the ABI tests dlopen upgate.so.
$(BUILD)/tests/%: $(OBJ)/tests/%.o $(TEST_HELPER_OBJ) $(ORACLE_OBJ) $(PLUGIN_OBJ) $(COMMON_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS_PLUGIN) $(LIBS_TEST) -ldl
$(BUILD)/tests/test_sim_units: $(SIM_CORE_OBJ)
# Counts the grant lookups of each HELLO (tests/test_hot_path.c).
$(BUILD)/tests/test_hot_path: LDFLAGS += -Wl,--wrap=ug_scope_lookup

$(GEN_V2): $(GEN_V2_OBJ) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PROTO) $(shell pkg-config --libs jansson 2>/dev/null)

# Rewrites the committed version 2 vectors (tests/test_vectors_v2 checks they are what the generator makes).
vectors-v2: $(GEN_V2)
	$(call say,GEN,tests/vectors-v2)mkdir -p tests/vectors-v2 && $(GEN_V2) tests/vectors-v2

# Makes a state folder of layout 1 with the code that wrote it, for the upgrade test.
LEGACY := $(BUILD)/tests/mkstate-v1
$(LEGACY): tests/legacy/mkstate_v1.c tests/legacy/quota_v1.c tests/legacy/quota_v1.h
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(WARN) -O2 -D_GNU_SOURCE $(SANFLAGS) -Iproto -Iplugin -Itests/legacy -o $@ tests/legacy/mkstate_v1.c tests/legacy/quota_v1.c $(shell pkg-config --libs lmdb 2>/dev/null) -lpthread

# The client library's suites link libupgate as an application would.
CLIENT_TESTS := $(filter $(BUILD)/tests/test_client%,$(TESTS))
$(CLIENT_TESTS): $(CLIENT_A)
$(CLIENT_TESTS): LIBS_TEST += $(LIBS_CURL) $(LIBS_DELTA)

# The fuzz smoke runs once, in the plain run: the fuzzers carry ASan and UBSan already.
test: deps
	@$(MAKE) --no-print-directory programs $(TESTS) $(LEGACY) $(GEN_V2) $(HOSTS)
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory check-unit
ifneq ($(SAN),1)
	@$(MAKE) --no-print-directory fuzz-smoke
endif

# Includes and calls point down (tests/layers.py): no cycle across plugin
# folders, no file calling a layer above its own, no function over 80 lines.
check-layers:
	@python3 tests/layers.py --quiet --obj $(OBJ)

# Every test binary runs, even after a failure; the run fails if any did,
# and ends with one line adding up Criterion's counts.
check-unit:
	@log=$(BUILD)/check-unit.log; : > $$log; \
	for t in $(TESTS); do \
	  echo "  TEST    $$t"; t0=$$(date +%s); \
	  { UG_SPEC=$(SPEC) UG_BUILD=$(abspath $(BUILD)) UG_ROOT=$(CURDIR) $$t --jobs=2 || echo "UGFAIL $$t"; } 2>&1 | tee -a $$log; \
	  echo "  TIME    $$t $$(( $$(date +%s) - t0 )) s"; \
	done; \
	awk '/Synthesis:/ { for (i = 1; i <= NF; i++) { if ($$i == "Passing:") p += $$(i+1); \
	       if ($$i == "Failing:" || $$i == "Crashing:") f += $$(i+1) } } \
	     /^UGFAIL/ { bad++ } END { printf "%d passed, %d failed\n", p, f; exit (f || bad) ? 1 : 0 }' $$log

demo: deps
	@$(MAKE) --no-print-directory programs
	@UG_BUILD=$(abspath $(BUILD)) sh demo/demo.sh

# Three trackers sharing one quota through one Redis (docs/fleet.md).
demo-fleet: deps
	@$(MAKE) --no-print-directory programs
	@UG_BUILD=$(abspath $(BUILD)) sh demo/demo-fleet.sh

# Side by side in one run (tests/bench*.c, docs/bench.md): this tree
# against bare libsodium, a bare UDP echo and drain, libev alone, and
# today's main (BENCH_BASE_REV, built from git history into bench-base/).
BENCH_BASE_REV := 19404ac
BENCH_BASE := $(BUILD)/bench-base
BENCH_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(filter-out tests/bench_decode.c tests/bench_mem.c tests/bench_hosts.c tests/bench_census.c tests/bench_census_host.c,$(wildcard tests/bench*.c)))

# Every row file's first line names the commit (tests/bench_stamp.h).
bench bench-sim bench-census bench-delta: export UG_BENCH_COMMIT = $(shell git describe --always --dirty 2>/dev/null || echo unknown)
bench: deps
	@$(MAKE) --no-print-directory bench-sim
	@$(MAKE) --no-print-directory programs $(BUILD)/bench $(BUILD)/bench-mem bench-base $(BUILD)/bench-hosts $(HOSTS)
	@UG_BUILD=$(abspath $(BUILD)) UG_BENCH_BASE=$(abspath $(BENCH_BASE)) $(BUILD)/bench
	@$(BUILD)/bench-mem $(abspath $(BUILD))
	@UG_BUILD=$(abspath $(BUILD)) $(BUILD)/bench-hosts

# Memory rows: state folders made once with the store's API (build/bench-state/).
$(BUILD)/bench-mem: $(OBJ)/tests/bench_mem.o $(PLUGIN_OBJ) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PLUGIN) -ldl

$(BUILD)/bench: $(BENCH_OBJ) $(OBJ)/tools/load/loadgen.o $(COMMON_LIB) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PROTO) -lev -ldl -lm -lpthread

# One row: CPU per simulated decision, 1M peers over one day (goal 300 ns).
bench-sim: all
	@UG_BUILD=$(abspath $(BUILD)) sh tests/bench_sim.sh

# Built once per revision and compiler; without git history the bench says
# "baseline unavailable" instead of failing.
bench-base:
	@stamp="$(BENCH_BASE_REV) $(CC) $(OPT)"; \
	if [ -f $(BENCH_BASE)/upgate.so ] && [ "$$(cat $(BENCH_BASE)/stamp 2>/dev/null)" = "$$stamp" ]; then exit 0; fi; \
	rm -rf $(BENCH_BASE) && mkdir -p $(BENCH_BASE)/src; \
	if git archive $(BENCH_BASE_REV) proto plugin node Makefile 2>$(BENCH_BASE)/build.log | tar -x -C $(BENCH_BASE)/src 2>>$(BENCH_BASE)/build.log && \
	   $(MAKE) --no-print-directory -C $(BENCH_BASE)/src BUILD=build SAN= CC="$(CC)" OPT="$(OPT)" \
	     build/upgate.so build/upgate-node >>$(BENCH_BASE)/build.log 2>&1 && \
	   cp $(BENCH_BASE)/src/build/upgate.so $(BENCH_BASE)/src/build/upgate-node $(BENCH_BASE)/; then \
	  echo "$$stamp" > $(BENCH_BASE)/stamp; echo "  BASE    $(BENCH_BASE_REV) -> $(BENCH_BASE)"; \
	else echo "  BASE    $(BENCH_BASE_REV) unavailable (see $(BENCH_BASE)/build.log)"; fi

# Instructions per HELLO decode (callgrind): the old path against the single pass.
$(BUILD)/bench-decode: $(OBJ)/tests/bench_decode.o $(ORACLE_OBJ) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PROTO)

BENCH_N := 2000
bench-decode: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench-decode
	@for m in old new new+cred; do \
	  out=$(BUILD)/callgrind.out.$$m; \
	  valgrind --tool=callgrind --callgrind-out-file=$$out --toggle-collect=decode_loop \
	    $(BUILD)/bench-decode $$m $(BENCH_N) >/dev/null 2>&1 || { echo "  bench-decode $$m failed"; exit 1; }; \
	  ir=$$(sed -n 's/^summary: *//p' $$out); \
	  printf '  HELLO decode %-9s %7d instructions\n' $$m $$((ir / $(BENCH_N))); \
	done

# make bench-census: the version census's cost on the WAIT path
include tests/bench_census.mk

FUZZ_SECONDS ?= 60
fuzz fuzz-smoke: deps
	@$(MAKE) --no-print-directory -f fuzz/fuzz.mk $@ FUZZ_SECONDS=$(FUZZ_SECONDS) SPEC=$(SPEC)

clean:
	rm -rf build

# make install, uninstall, deb
include install.mk

# Programs look for the plugin beside them (the build tree), then at
# PLUGINDIR as seen from their folder (a staged or relocated install), then
# at PLUGINDIR itself (common/common.c, ug_default_plugin).
UG_PLUGIN_REL := $(shell realpath -m --relative-to='$(BINDIR)' '$(PLUGINDIR)')
$(OBJ)/common/common.o: CFLAGS += -DUG_PLUGINDIR='"$(PLUGINDIR)"' -DUG_PLUGIN_REL='"$(UG_PLUGIN_REL)"'

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
