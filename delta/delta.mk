# Delta packages (delta/*.c), included by the Makefile: the library and its
# unit suite's link line.

DEB_PKGS += zstd libzstd-dev bsdiff

DELTA_SRC := $(wildcard delta/*.c)
DELTA_OBJ := $(DELTA_SRC:%.c=$(OBJ)/%.o)
DELTA_LIB := $(BUILD)/libugdelta.a
LIBS_DELTA = $(shell pkg-config --libs libzstd libsodium 2>/dev/null)
CFLAGS += -Idelta

# A leaf for libupgate and upgate-keys to link once they make or apply
# deltas; built with the programs so a broken delta/ shows at once.
programs: $(DELTA_LIB)

$(DELTA_LIB): $(DELTA_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_delta: $(DELTA_LIB)
$(BUILD)/tests/test_delta: LIBS_TEST += $(LIBS_DELTA)
