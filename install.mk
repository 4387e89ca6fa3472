# upgate install, uninstall and Debian packages; included by the Makefile.
#
#   make install [DESTDIR=/tmp/root] [PREFIX=/usr/local] [LIBDIR=...] ...
#   make uninstall (same variables)
#   make deb       (dpkg-buildpackage -us -uc -b, then lintian; files land in build/deb/)
#
# Every directory can be overridden. SYSCONFDIR and LOCALSTATEDIR do not follow
# PREFIX: the systemd units name /etc/upgate (ConfigurationDirectory=) and
# /var/lib/upgate (StateDirectory=), and the example policy must agree with them.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
PLUGINDIR ?= $(LIBDIR)/upgate
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
STATEDIR ?= $(LOCALSTATEDIR)/lib/upgate
INSTALL ?= install

# The project's version: UG_VERSION when the Makefile sets it (the programs'
# --version), else the top entry of debian/changelog; tests/test_install.c
# checks that the two agree.
DEB_VERSION := $(shell awk 'NR == 1 { v = $$2; gsub(/[()]/, "", v); sub(/-[^-]*$$/, "", v); print v }' debian/changelog)
VERSION ?= $(or $(UG_VERSION),$(DEB_VERSION))
UG_ABI_MAJOR := $(shell sed -n 's/^.define UG_PLUGIN_ABI_MAJOR \([0-9]*\)u.*/\1/p' plugin/upgate_plugin.h)
UG_ABI_MINOR := $(shell sed -n 's/^.define UG_PLUGIN_ABI_MINOR \([0-9]*\)u.*/\1/p' plugin/upgate_plugin.h)

# Operators' programs go to sbin (their pages are in section 8), the rest to
# bin; each is installed once $(PROGRAMS) builds it (upgate-ctl and upgate-sim
# join later). Programs not named here (upgate-load, a loopback load
# generator) stay in build/.
SBIN_NAMES := upgate-node upgate-ctl
BIN_NAMES := upgate-keys upgate-peer upgate-sim
INST_SBIN = $(filter $(addprefix $(BUILD)/,$(SBIN_NAMES)),$(PROGRAMS))
INST_BIN = $(filter $(addprefix $(BUILD)/,$(BIN_NAMES)),$(PROGRAMS))

# The client library is installed when its header is in the tree; then every
# one of its files is required (no half-installed library). Its shared object
# is $(CLIENT_SO) when the client's rules name it (libupgate.so.1.1.0, say),
# else build/libupgate.so.1; installed as that file plus the links
# libupgate.so.1 (the SONAME) and libupgate.so (for -lupgate).
# (include/upgate/host.h is libupgate-host's: it goes with the plugin's header, below)
UG_CLIENT_HEADERS := $(filter-out include/upgate/host.h,$(wildcard include/upgate/*.h))
ifneq ($(wildcard include/upgate/client.h),)
UG_CLIENT_SO := $(or $(CLIENT_SO),$(BUILD)/libupgate.so.1)
UG_CLIENT_FILES := $(BUILD)/libupgate.a $(UG_CLIENT_SO)
UG_CLIENT_PC_IN := $(firstword $(wildcard upgate.pc.in client/upgate.pc.in) upgate.pc.in)
UG_CLIENT_VERSION := $(or $(CLIENT_VERSION),$(VERSION))
UG_CLIENT_INSTALL = $(INSTALL) -m 644 $(BUILD)/libupgate.a $(DESTDIR)$(LIBDIR); \
                    $(INSTALL) -m 644 $(UG_CLIENT_SO) $(DESTDIR)$(LIBDIR); \
                    [ $(notdir $(UG_CLIENT_SO)) = libupgate.so.1 ] || \
                      ln -sf $(notdir $(UG_CLIENT_SO)) $(DESTDIR)$(LIBDIR)/libupgate.so.1; \
                    ln -sf libupgate.so.1 $(DESTDIR)$(LIBDIR)/libupgate.so; \
                    $(call gen,$(UG_CLIENT_PC_IN),$(PKG_OUT)/upgate.pc,-e 's|@VERSION@|$(UG_CLIENT_VERSION)|g'); \
                    $(INSTALL) -m 644 $(PKG_OUT)/upgate.pc $(DESTDIR)$(PKGCONFIGDIR);
endif

# libupgate-host (host/host.mk): what a tracker links to load the plugin,
# with the plugin's ABI header (upgate-plugin-dev): upgate/host.h, the
# archive, the shared object as HOST_SO plus the links libupgate-host.so.1
# (the SONAME) and libupgate-host.so (for -lupgate-host).
UG_HOST_FILES := $(HOST_A) $(HOST_SO)
UG_HOST_INSTALL = $(INSTALL) -m 644 include/upgate/host.h $(DESTDIR)$(INCLUDEDIR)/upgate; \
                  $(INSTALL) -m 644 $(HOST_A) $(HOST_SO) $(DESTDIR)$(LIBDIR); \
                  ln -sf $(notdir $(HOST_SO)) $(DESTDIR)$(LIBDIR)/$(HOST_SONAME); \
                  ln -sf $(HOST_SONAME) $(DESTDIR)$(LIBDIR)/libupgate-host.so;

MAN_PAGES := $(wildcard man/*.[1-8].in)
UNITS := upgate-node.service upgate-node@.service
PKG_OUT := $(BUILD)/pkg

# sd_notify support is optional at build time: the unit is Type=notify only
# when the node links libsystemd, else Type=exec (a notify unit whose program
# never says READY=1 would time out at start).
UNIT_TYPE ?= $(shell readelf -d $(BUILD)/upgate-node 2>/dev/null | grep -q 'NEEDED.*libsystemd' && echo notify || echo exec)

PKG_SUBST = -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
            -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@PLUGINDIR@|$(PLUGINDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
            -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
            -e 's|@ABI_MAJOR@|$(UG_ABI_MAJOR)|g' -e 's|@ABI_MINOR@|$(UG_ABI_MINOR)|g' -e 's|@UNIT_TYPE@|$(UNIT_TYPE)|g'

# gen(template, output[, sed expressions first]): substitute the paths;
# refuse a token left unknown.
gen = sed $(3) $(PKG_SUBST) $(1) > $(2).tmp && \
      if grep -n '@[A-Z_]*@' $(2).tmp; then echo "$(1): unknown @TOKEN@ above" >&2; rm -f $(2).tmp; exit 1; fi && \
      mv $(2).tmp $(2)

.PHONY: installables install uninstall deb

installables: programs $(UG_CLIENT_FILES) $(UG_HOST_FILES)

# Templates are expanded at every install: paths are make variables, which
# make cannot track as prerequisites.
install: installables
	$(call say,INSTALL,$(DESTDIR)$(PREFIX))set -e; \
	rm -rf $(PKG_OUT); mkdir -p $(PKG_OUT); \
	for f in $(MAN_PAGES) systemd/upgate-node.service.in systemd/upgate-node@.service.in \
	         upgate-plugin.pc.in etc/policy.yaml.example.in; do \
	  $(call gen,$$f,$(PKG_OUT)/$$(basename $$f .in)); \
	done; \
	d() { $(INSTALL) -d -m 755 "$(DESTDIR)$$1"; }; \
	d $(BINDIR); d $(SBINDIR); d $(PLUGINDIR); d $(INCLUDEDIR)/upgate; d $(PKGCONFIGDIR); \
	d $(SYSTEMDUNITDIR); d $(SYSUSERSDIR); d $(SYSCONFDIR)/upgate; \
	for s in 1 3 5 8; do d $(MANDIR)/man$$s; done; \
	$(if $(INST_BIN),$(INSTALL) -m 755 $(INST_BIN) $(DESTDIR)$(BINDIR);) \
	$(if $(INST_SBIN),$(INSTALL) -m 755 $(INST_SBIN) $(DESTDIR)$(SBINDIR);) \
	$(INSTALL) -m 644 $(PLUGIN_SO) $(DESTDIR)$(PLUGINDIR); \
	$(INSTALL) -m 644 plugin/upgate_plugin.h $(UG_CLIENT_HEADERS) $(DESTDIR)$(INCLUDEDIR)/upgate; \
	$(INSTALL) -m 644 $(PKG_OUT)/upgate-plugin.pc $(DESTDIR)$(PKGCONFIGDIR); \
	for m in $(notdir $(MAN_PAGES:.in=)); do \
	  $(INSTALL) -m 644 $(PKG_OUT)/$$m $(DESTDIR)$(MANDIR)/man$${m##*.}; \
	done; \
	$(INSTALL) -m 644 $(addprefix $(PKG_OUT)/,$(UNITS)) $(DESTDIR)$(SYSTEMDUNITDIR); \
	$(INSTALL) -m 644 systemd/upgate.sysusers $(DESTDIR)$(SYSUSERSDIR)/upgate.conf; \
	$(INSTALL) -m 644 $(PKG_OUT)/policy.yaml.example $(DESTDIR)$(SYSCONFDIR)/upgate; \
	$(UG_CLIENT_INSTALL) \
	$(UG_HOST_INSTALL) \
	if [ -z "$(DESTDIR)" ]; then \
	  echo "  NOTE    create the upgate user with: systemd-sysusers $(SYSUSERSDIR)/upgate.conf"; \
	  echo "  NOTE    first run: see upgate-node(8), FIRST RUN"; \
	fi

# Removes what install put there, never an operator's file (policy.yaml,
# keys, state); folders only when nothing else is left in them.
uninstall:
	$(call say,RM,$(DESTDIR)$(PREFIX))set -e; \
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(INST_BIN))) \
	      $(addprefix $(DESTDIR)$(SBINDIR)/,$(notdir $(INST_SBIN))) \
	      $(DESTDIR)$(PLUGINDIR)/upgate.so \
	      $(DESTDIR)$(INCLUDEDIR)/upgate/upgate_plugin.h $(addprefix $(DESTDIR)$(INCLUDEDIR)/upgate/,$(notdir $(UG_CLIENT_HEADERS))) \
	      $(DESTDIR)$(PKGCONFIGDIR)/upgate-plugin.pc $(DESTDIR)$(PKGCONFIGDIR)/upgate.pc \
	      $(DESTDIR)$(LIBDIR)/libupgate.a $(DESTDIR)$(LIBDIR)/libupgate.so.1* $(DESTDIR)$(LIBDIR)/libupgate.so \
	      $(DESTDIR)$(INCLUDEDIR)/upgate/host.h $(DESTDIR)$(LIBDIR)/libupgate-host.a \
	      $(DESTDIR)$(LIBDIR)/libupgate-host.so.1* $(DESTDIR)$(LIBDIR)/libupgate-host.so \
	      $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS)) $(DESTDIR)$(SYSUSERSDIR)/upgate.conf \
	      $(DESTDIR)$(SYSCONFDIR)/upgate/policy.yaml.example; \
	for m in $(notdir $(MAN_PAGES:.in=)); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$$m; done; \
	for d in $(PLUGINDIR) $(INCLUDEDIR)/upgate $(SYSCONFDIR)/upgate; do \
	  [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; \
	done

# Debian packages: not part of `make test` (about 40 s here, lintian included).
# `deps` with the packaging tools added to its list installs what is missing.
DEB_OUT := build/deb
deb:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(DEB_PKGS_DEB)"
	@sh debian/make-deb.sh $(DEB_OUT)
