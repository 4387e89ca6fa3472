# make bench-census (tests/bench_census.c), included by the Makefile: what the
# version census adds to the WAIT path, in-process rows (ratios to the same
# round's WAIT alone) and callgrind's instructions per HELLO. Part of make bench.

BENCH_CENSUS_N := 16384
BENCH_CENSUS_OBJ := $(OBJ)/tests/bench_census.o $(OBJ)/tests/bench_census_host.o $(OBJ)/tests/bench_env.o $(OBJ)/tests/bench_plugin.o \
                    $(OBJ)/tests/bench_servers.o $(filter $(OBJ)/plugin/census/%,$(PLUGIN_OBJ))

$(BUILD)/bench-census: $(BENCH_CENSUS_OBJ) $(OBJ)/tools/load/loadgen.o $(COMMON_LIB) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS_PROTO) $(shell pkg-config --libs jansson 2>/dev/null) -lev -ldl -lm -lpthread

.PHONY: bench-census
bench: bench-census
bench-census: all
	@$(MAKE) --no-print-directory $(BUILD)/bench-census
	@UG_BUILD=$(abspath $(BUILD)) $(BUILD)/bench-census
	@echo "  callgrind, instructions per untargeted HELLO ($(BENCH_CENSUS_N) HELLOs, after a warm-up):"
	@for m in wait both fresh drain; do \
	  out=$(BUILD)/callgrind.out.census-$$m; \
	  UG_BUILD=$(abspath $(BUILD)) valgrind --tool=callgrind --callgrind-out-file=$$out '--toggle-collect=ir_loop*' \
	    $(BUILD)/bench-census ir $$m $(BENCH_CENSUS_N) >/dev/null 2>&1 || { echo "  bench-census ir $$m failed"; exit 1; }; \
	  ir=$$(sed -n 's/^summary: *//p' $$out); \
	  case $$m in wait) what="WAIT alone (handle2)";; both) what="WAIT + note, uids seen this slot";; \
	    fresh) what="WAIT + note, each a new uid";; drain) what="drain, per staged HELLO";; esac; \
	  printf '    %-32s %6d\n' "$$what" $$((ir / $(BENCH_CENSUS_N))); \
	done
