# libFuzzer harnesses: `make fuzz-smoke` (part of `make test`) replays every committed corpus and fuzzes each harness briefly; `make fuzz` runs each for FUZZ_SECONDS.
#
#   make fuzz FUZZ_SECONDS=600 [FUZZ_TARGETS="dgram hello"] [-j2]
#       long runs, one process per harness (-j2: two harnesses at a time);
#       new inputs go to build/fuzz/corpus-new/NAME, never to fuzz/corpus/
#   make -f fuzz/fuzz.mk fuzz-merge-NAME
#       folds the worthwhile new inputs of long runs into fuzz/corpus/NAME
#   make -f fuzz/fuzz.mk fuzz-corpus SPEC=...
#       regenerates the seed corpora from the spec's vectors (needs python3)
#   make -f fuzz/fuzz.mk fuzz-corpus-v2
#       the same for the version 2 harnesses, from tests/vectors-v2
#   make -f fuzz/fuzz.mk fuzz-corpus-delta
#       regenerates fuzz/corpus/delta's seeds (fuzz/delta/mkcorpus.c)
# A finding leaves build/fuzz/artifacts/NAME/crash-*; minimise it with
#   build/fuzz/fuzz_NAME -minimize_crash=1 -runs=100000 -exact_artifact_path=OUT CRASH
# and commit it as fuzz/corpus/NAME/crash-<what>, so every smoke run replays it.

FZ ?= build/fuzz
SPEC ?= $(abspath ../shared/spec)
FUZZ_SECONDS ?= 60
SMOKE_SECONDS ?= 4
FUZZ_TARGETS ?= dgram hello hint report policy plugin capture client control ctl fleet sim keyring cert manifest2 token dgram2 delta tzif census simcensus pstate opener
FUZZ_CC ?= clang

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

FZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FZ_WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wvla
FZ_CFLAGS := $(FZ_WARN) -g -O1 -D_GNU_SOURCE -Iproto -Iplugin -Iinclude -Icommon -Isim -Idelta -Ifuzz -MMD -MP $(FZ_SAN)
FZ_LIBS = $(shell pkg-config --libs libsodium msgpack yaml-0.1 lmdb libmaxminddb jansson hiredis libzstd libcurl 2>/dev/null) -lpthread -ldl -lm

# The code under test is instrumented for coverage; each harness links only
# the objects it reaches, out of one archive.
# common/*.c: what the programs share, the capture file reader (upgate-node --capture,
# upgate-sim --replay) and what upgate-ctl reads (jwalk.c, render*.c, the node's
# record in runrec.c) among it; sim/simspec.c, sim/simedit.c: upgate-sim's flag
# values and its policy rewriter;
# delta/*.c: the delta codec (patches from mirrors)
LIB_SRC := $(wildcard proto/*.c) $(wildcard plugin/*.c plugin/*/*.c) $(wildcard common/*.c) \
           $(filter-out client/example.c,$(wildcard client/*.c)) sim/simspec.c sim/simedit.c sim/simcensus.c \
           $(wildcard delta/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(FZ)/obj/%.o)
FZ_LIB := $(FZ)/libugfuzz.a
# The oracle (the old msgpack-c decoders) is our own code, like the harnesses.
ORACLE_OBJ := $(patsubst %.c,$(FZ)/obj/%.o,$(wildcard fuzz/oracle/*.c))
COMMON_OBJ := $(FZ)/obj/fuzz/fuzz_common.o $(FZ)/obj/fuzz/v2common.o $(ORACLE_OBJ)
HARNESSES := dgram hello hint report policy plugin capture client control ctl fleet sim keyring cert manifest2 token dgram2 delta tzif census simcensus pstate opener
BINS := $(HARNESSES:%=$(FZ)/fuzz_%)

# Per harness: the largest input worth trying (a datagram, an object, a policy).
MAXLEN_dgram := 1300
MAXLEN_hello := 2100
MAXLEN_hint := 2100
MAXLEN_report := 1300
MAXLEN_policy := 4096
MAXLEN_plugin := 1300
MAXLEN_capture := 4096
MAXLEN_control := 2048
MAXLEN_client := 1300
MAXLEN_ctl := 8192
MAXLEN_fleet := 4096
MAXLEN_sim := 4096
# version 2: a keyring document (cap 4096), objects (2048), datagrams
MAXLEN_keyring := 4200
MAXLEN_cert := 2100
MAXLEN_manifest2 := 2100
MAXLEN_token := 1300
MAXLEN_dgram2 := 1300
MAXLEN_delta := 16384
MAXLEN_tzif := 8192
MAXLEN_census := 65536
# upgate-sim --population: a census file (its buckets, a few hundred bytes each)
MAXLEN_simcensus := 65536
# libupgate's version 2 state file (cap 8192)
MAXLEN_pstate := 8300
# the opener helper's requests, a few dozen in a row
MAXLEN_opener := 4096
# An allocation over 64 MiB is a finding: nothing may be sized by a claim.
RUNFLAGS = -max_len=$(MAXLEN_$(1)) -malloc_limit_mb=64 -rss_limit_mb=2048 -timeout=10 \
           -artifact_prefix=$(FZ)/artifacts/$(1)/

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-corpus fuzz-corpus-v2 fuzz-clean
.PHONY: fuzz fuzz-smoke fuzz-build fuzz-corpus fuzz-corpus-delta fuzz-clean
.SECONDARY:
.DELETE_ON_ERROR:

fuzz-build: $(BINS)

$(FZ)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CLANG,$<)$(FUZZ_CC) $(FZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# Our own code must stay warning-free; the code under test is held to
# -Werror by the main build already.
$(FZ)/obj/fuzz/%.o: fuzz/%.c
	@mkdir -p $(@D)
	$(call say,CLANG,$<)$(FUZZ_CC) $(FZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -c -o $@ $<

$(FZ_LIB): $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(FZ)/fuzz_%: $(FZ)/obj/fuzz/fuzz_%.o $(COMMON_OBJ) $(FZ_LIB)
	$(call say,LD,$@)$(FUZZ_CC) $(FZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FZ_LIBS)

# Regression first: every committed input replayed as is (a crash, leak or
# timeout fails make); then a short random run from that corpus, writing new
# inputs to a scratch dir (libFuzzer adds units to the first dir it is given),
# so the committed corpus never changes here. One line per harness; like
# check-unit, every harness runs even after one failed (-k), then make fails.
fuzz-smoke: $(BINS)
	@$(MAKE) --no-print-directory -k -f $(firstword $(MAKEFILE_LIST)) $(HARNESSES:%=fuzz-smoke-%)

fuzz-smoke-%: $(FZ)/fuzz_%
	@log=$(FZ)/logs/smoke-$*.log; scratch=$(FZ)/scratch/$*; \
	rm -rf $$scratch; mkdir -p $$scratch $(FZ)/logs $(FZ)/artifacts/$* fuzz/corpus/$*; \
	fail() { tail -n 60 $$log; echo "  FUZZ    $* FAILED ($$1; log $$log, inputs in $(FZ)/artifacts/$*/)"; exit 1; }; \
	$(if $(Q),,set -x;) $(FZ)/fuzz_$* $(call RUNFLAGS,$*) -runs=0 fuzz/corpus/$* > $$log 2>&1 || fail "corpus replay"; \
	$(if $(Q),,set -x;) $(FZ)/fuzz_$* $(call RUNFLAGS,$*) -dict=fuzz/$*.dict -max_total_time=$(SMOKE_SECONDS) \
	  -print_final_stats=1 $$scratch fuzz/corpus/$* >> $$log 2>&1 || fail "random run"; \
	n=$$(ls fuzz/corpus/$* | wc -l); \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -n 1); \
	cov=$$(grep -E '^#[0-9]+' $$log | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/p'); \
	printf '  FUZZ    %-7s %4s inputs replayed, %7s runs in %ss, %s\n' $* "$$n" "$$runs" $(SMOKE_SECONDS) "$$cov"

# Long runs; `make fuzz -j2` runs two harnesses at a time.
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-run-%: $(FZ)/fuzz_%
	@log=$(FZ)/logs/fuzz-$*.log; mkdir -p $(FZ)/corpus-new/$* $(FZ)/artifacts/$* $(FZ)/logs fuzz/corpus/$*; \
	echo "  FUZZ    $* for $(FUZZ_SECONDS) s (log $$log)"; \
	$(if $(Q),,set -x;) $(FZ)/fuzz_$* $(call RUNFLAGS,$*) -dict=fuzz/$*.dict -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 $(FZ)/corpus-new/$* fuzz/corpus/$* > $$log 2>&1; rc=$$?; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -n 1); \
	eps=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log | tail -n 1); \
	cov=$$(grep -E '^#[0-9]+' $$log | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]* corp: [0-9]*\).*/\1/p'); \
	if [ $$rc -ne 0 ]; then \
	  grep -E -A40 '^==[0-9]+==ERROR|==FUZZ INVARIANT==|^SUMMARY|runtime error' $$log | head -n 80; \
	  echo "  FUZZ    $* FOUND SOMETHING (exit $$rc): $$(ls -t $(FZ)/artifacts/$* | head -n 1)"; exit 1; \
	fi; \
	printf '  FUZZ    %-7s %s runs (%s/s), %s\n' $* "$$runs" "$$eps" "$$cov"

# Adds to the committed corpus the few inputs of long runs that reach new
# edges (-use_counters=0: edges, not hit counts, keeps it a few hundred KB).
fuzz-merge-%: $(FZ)/fuzz_%
	$(call say,MERGE,fuzz/corpus/$*)$(FZ)/fuzz_$* $(call RUNFLAGS,$*) -use_counters=0 -merge=1 fuzz/corpus/$* $(FZ)/corpus-new/$* \
	  > $(FZ)/logs/merge-$*.log 2>&1 || { tail -n 20 $(FZ)/logs/merge-$*.log; exit 1; }

fuzz-corpus:
	$(call say,GEN,fuzz/corpus)bash fuzz/make-corpus.sh $(SPEC) fuzz/corpus

fuzz-corpus-v2:
	$(call say,GEN,fuzz/corpus)python3 fuzz/make-corpus-v2.py tests/vectors-v2 fuzz/corpus
# fuzz_delta's seeds: real deltas over its fixed old file, and hostile frames.
fuzz-corpus-delta:
	@mkdir -p $(FZ) fuzz/corpus/delta
	$(call say,GEN,fuzz/corpus/delta)$(FUZZ_CC) $(FZ_WARN) -Werror -O1 -D_GNU_SOURCE -Idelta -o $(FZ)/mkcorpus-delta \
	  fuzz/delta/mkcorpus.c $(wildcard delta/*.c) $(shell pkg-config --libs libzstd libsodium) && \
	  $(FZ)/mkcorpus-delta fuzz/corpus/delta

fuzz-clean:
	rm -rf $(FZ)

-include $(shell find $(FZ)/obj -name '*.d' 2>/dev/null)
