# Delta packages (delta/*.c, docs/deltas.md), included by the Makefile: the
# library, its unit suite's link line and its rows of `make bench`.

DEB_PKGS += zstd libzstd-dev bsdiff

DELTA_SRC := $(wildcard delta/*.c)
DELTA_OBJ := $(DELTA_SRC:%.c=$(OBJ)/%.o)
DELTA_LIB := $(BUILD)/libugdelta.a
LIBS_DELTA = $(shell pkg-config --libs libzstd libsodium 2>/dev/null)
$(OBJ)/delta/%.o: INC := -Idelta

# A leaf for libupgate and upgate-keys to link once they make or apply
# deltas; built with the programs so a broken delta/ shows at once.
programs: $(DELTA_LIB)

$(DELTA_LIB): $(DELTA_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_delta: $(DELTA_LIB)
$(BUILD)/tests/test_delta: LIBS_TEST += $(LIBS_DELTA)

# The pair of this repository's own programs: the first commit with
# upgate-node (2026-11-24) and the last of 2026-12-01, pinned so the rows
# compare across runs; each built once (stamped) from git history.
BENCH_DELTA_OLD := 1762fb3
BENCH_DELTA_NEW := f9742f5
BENCH_DELTA := $(BUILD)/bench-delta-pairs

.PHONY: bench-delta bench-delta-pairs
bench: bench-delta

$(BUILD)/bench-delta: $(OBJ)/tests/delta/bench_delta.o $(DELTA_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_DELTA) -lm

bench-delta: all
	@$(MAKE) --no-print-directory $(BUILD)/bench-delta bench-delta-pairs
	@UG_BUILD=$(abspath $(BUILD)) UG_DELTA_PAIRS=$(abspath $(BENCH_DELTA)) \
	  UG_DELTA_REVS="$(BENCH_DELTA_OLD) $(BENCH_DELTA_NEW)" sh tests/delta/bench_delta.sh

# upgate-node and upgate.so at each pinned commit, into $(BENCH_DELTA)/REV/;
# without git history the rows say "pair unavailable" instead of failing.
bench-delta-pairs:
	@for rev in $(BENCH_DELTA_OLD) $(BENCH_DELTA_NEW); do \
	  d=$(BENCH_DELTA)/$$rev; stamp="$$rev $(CC) $(OPT)"; \
	  if [ -f $$d/upgate.so ] && [ "$$(cat $$d/stamp 2>/dev/null)" = "$$stamp" ]; then continue; fi; \
	  rm -rf $$d && mkdir -p $$d/src; \
	  if git archive $$rev 2>$$d/build.log | tar -x -C $$d/src 2>>$$d/build.log && \
	     $(MAKE) --no-print-directory -C $$d/src BUILD=build SAN= CC="$(CC)" OPT="$(OPT)" \
	       build/upgate.so build/upgate-node >>$$d/build.log 2>&1 && \
	     cp $$d/src/build/upgate.so $$d/src/build/upgate-node $$d/; then \
	    rm -rf $$d/src; echo "$$stamp" > $$d/stamp; echo "  PAIR    $$rev -> $$d"; \
	  else echo "  PAIR    $$rev unavailable (see $$d/build.log)"; fi; \
	done
