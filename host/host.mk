# libupgate-host (host/, include/upgate/host.h) and the real hosts built on it (contrib/, `make hosts`); included by the Makefile.

HOST_SRC := $(wildcard host/*.c)
# The control socket gathers each reply in common/'s ug_buf: its object goes
# in, hidden (and local in the archive) like the library's own.
HOST_OBJ := $(HOST_SRC:%.c=$(OBJ)/%.o) $(OBJ)/common/buf.o
$(OBJ)/host/%.o: INC := -Iproto -Iplugin -Iinclude -Icommon
HOST_VERSION := 1.0.0
HOST_SONAME := libupgate-host.so.1
HOST_A := $(BUILD)/libupgate-host.a
HOST_SO := $(BUILD)/libupgate-host.so.$(HOST_VERSION)
HOST_LIB_DEPS = $(shell pkg-config --libs jansson 2>/dev/null) -ldl -lpthread
HOST_LIBS := $(HOST_A) $(HOST_SO) $(BUILD)/libupgate-host.so

# The plugin a host gets when its configuration names none: the installed one.
$(HOST_OBJ): CFLAGS += -DUG_HOST_DEFAULT_PLUGIN='"$(PLUGINDIR)/upgate.so"'

# As libupgate: the archive is one object whose hidden symbols are made
# local; the shared object exports what libupgate-host.map says.
$(BUILD)/libupgate-host.o: $(HOST_OBJ)
	$(call say,LD,$@)$(LD) -r -o $@ $^ && objcopy --localize-hidden $@

$(HOST_A): $(BUILD)/libupgate-host.o
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $<

$(HOST_SO): $(HOST_OBJ) host/libupgate-host.map
	$(call say,LD,$@)$(CC) -shared $(LDFLAGS) -Wl,-soname,$(HOST_SONAME) -Wl,--version-script=host/libupgate-host.map \
	  -Wl,--no-undefined -o $@ $(HOST_OBJ) $(HOST_LIB_DEPS)

$(BUILD)/libupgate-host.so: $(HOST_SO)
	$(Q)ln -sf $(notdir $(HOST_SO)) $(BUILD)/$(HOST_SONAME) && ln -sf $(HOST_SONAME) $@

# ---- make hosts: opentracker and n2n's supernode from ../shared/hosts ------
#
# Built once per build folder (build/hosts, build/san/hosts: a sanitized
# plugin needs a sanitized host), again only when the tarball, the patch or
# the library changes. The include folder is laid out as installed.
HOSTS_SRC ?= $(abspath ../shared/hosts)
HOSTS_OUT := $(BUILD)/hosts
HOSTS := $(HOSTS_OUT)/opentracker $(HOSTS_OUT)/supernode
HOSTS_INC := $(HOSTS_OUT)/include/upgate
HOSTS_LIBS = $(abspath $(HOST_A)) $(HOST_LIB_DEPS)

$(HOSTS_INC)/host.h: include/upgate/host.h plugin/upgate_plugin.h
	@mkdir -p $(@D)
	$(Q)cp plugin/upgate_plugin.h $(HOSTS_INC)/ && cp include/upgate/host.h $@

$(HOSTS_OUT)/opentracker: contrib/build-host.sh contrib/opentracker/upgate.patch $(HOST_A) $(HOSTS_INC)/host.h \
                          $(wildcard $(HOSTS_SRC)/opentracker-*.tar.gz)
	$(call say,HOST,$@)sh contrib/build-host.sh opentracker $(HOSTS_SRC) $(abspath $(HOSTS_OUT)) \
	  $(abspath $(HOSTS_OUT)/include) "$(HOSTS_LIBS)" "$(SANFLAGS)"

$(HOSTS_OUT)/supernode: contrib/build-host.sh contrib/n2n/upgate.patch $(HOST_A) $(HOSTS_INC)/host.h \
                        $(wildcard $(HOSTS_SRC)/n2n-*.tar.gz)
	$(call say,HOST,$@)sh contrib/build-host.sh n2n $(HOSTS_SRC) $(abspath $(HOSTS_OUT)) \
	  $(abspath $(HOSTS_OUT)/include) "$(HOSTS_LIBS)" "$(SANFLAGS)"

hosts: deps
	@$(MAKE) --no-print-directory $(PLUGIN_SO) $(HOSTS)

# The library's own suite links the archive; the real hosts' suites need the hosts.
$(BUILD)/tests/test_hostlib: $(HOST_A)
$(BUILD)/tests/test_hostlib: LIBS_TEST += $(HOST_LIB_DEPS)

# make bench's hosts rows (tests/bench_hosts.c): opentracker with the adapter against upgate-node.
$(BUILD)/bench-hosts: $(OBJ)/tests/bench_hosts.o $(OBJ)/tests/bench_env.o $(OBJ)/tests/bench_servers.o \
                      $(OBJ)/tools/load/loadgen.o $(COMMON_LIB) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS_PROTO) -lev -lm -lpthread
