# libFuzzer harnesses: `make fuzz` runs each for FUZZ_SECONDS; `make test` runs
# fuzz-smoke: every corpus replayed as a regression, then each harness briefly.
FZ := build/fuzz
SPEC ?= ../shared/spec
FUZZ_SECONDS ?= 60
SMOKE_SECONDS ?= 4
HARNESSES := dgram hello hint policy plugin

# One allocation over 64 MiB is a finding: nothing may be sized by a claim.
RUNFLAGS := -malloc_limit_mb=64 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1
FZFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
           -Wall -Wextra -Werror -Iproto -Iplugin -Ifuzz
FZLIBS = $(shell pkg-config --libs libsodium msgpack yaml-0.1 lmdb) -lpthread -ldl
PROTO_SRC := $(wildcard proto/*.c)
PLUGIN_SRC := $(wildcard plugin/*.c)
SRC_dgram := $(PROTO_SRC)
SRC_hello := $(PROTO_SRC)
SRC_hint := $(PROTO_SRC)
SRC_policy := $(PROTO_SRC) $(PLUGIN_SRC) fuzz/fuzz_env.c
SRC_plugin := $(PROTO_SRC) $(PLUGIN_SRC) fuzz/fuzz_env.c
dict = $(if $(filter policy,$(1)),fuzz/policy.dict,fuzz/msgpack.dict)

ifeq ($(V),1)
Q :=
else
Q := @
endif

BINS := $(HARNESSES:%=$(FZ)/fuzz_%)
.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: $(BINS) $(FZ)/seeds/.stamp

$(FZ)/fuzz_%: fuzz/fuzz_%.c $(PROTO_SRC) $(PLUGIN_SRC) fuzz/fuzz_env.c $(wildcard fuzz/*.h proto/*.h plugin/*.h)
	@mkdir -p $(@D)
	@$(if $(Q),printf '  %-7s %s\n' CLANG $<;)
	$(Q)clang $(FZFLAGS) -o $@ $< $(SRC_$*) $(FZLIBS)

# Seeds made from the spec's vectors, and the hostile inputs of the issue.
$(FZ)/seeds/.stamp: fuzz/seeds.py $(wildcard $(SPEC)/vectors/*.json)
	$(Q)rm -rf $(FZ)/seeds && python3 fuzz/seeds.py $(SPEC) $(FZ)/seeds && touch $@

# Replays fuzz/corpus/H (regressions) and the seeds, then fuzzes for a few
# seconds into a scratch folder, so the committed corpus never changes here.
fuzz-smoke: fuzz-build
	$(Q)for h in $(HARNESSES); do \
	  log=$(FZ)/smoke-$$h.log; rm -rf $(FZ)/scratch/$$h; mkdir -p $(FZ)/scratch/$$h fuzz/corpus/$$h; \
	  if ! $(FZ)/fuzz_$$h $(RUNFLAGS) -runs=0 fuzz/corpus/$$h $(FZ)/seeds/$$h > $$log 2>&1 || \
	     ! $(FZ)/fuzz_$$h $(RUNFLAGS) -max_total_time=$(SMOKE_SECONDS) -dict=$(call dict,$$h) \
	         $(FZ)/scratch/$$h fuzz/corpus/$$h $(FZ)/seeds/$$h >> $$log 2>&1; then \
	    tail -n 40 $$log; echo "  FUZZ    $$h: FAILED (log: $$log)"; exit 1; \
	  fi; \
	  printf '  FUZZ    %-7s %s\n' $$h "$$(grep -E '^#[0-9]+.*(DONE|pulse)' $$log | tail -n 1 | cut -c1-60)"; \
	done

# Long runs: new inputs go to build/fuzz/corpus-new/H; copy the ones worth
# keeping (and every crash, minimized) into fuzz/corpus/H.
fuzz: fuzz-build
	$(Q)for h in $(HARNESSES); do \
	  mkdir -p $(FZ)/corpus-new/$$h $(FZ)/artifacts; \
	  echo "  FUZZ    $$h for $(FUZZ_SECONDS) s"; \
	  $(FZ)/fuzz_$$h $(RUNFLAGS) -max_total_time=$(FUZZ_SECONDS) -dict=$(call dict,$$h) \
	     -artifact_prefix=$(FZ)/artifacts/$$h- $(FZ)/corpus-new/$$h fuzz/corpus/$$h $(FZ)/seeds/$$h \
	     > $(FZ)/fuzz-$$h.log 2>&1 || { tail -n 40 $(FZ)/fuzz-$$h.log; exit 1; }; \
	  grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units' $(FZ)/fuzz-$$h.log | tail -n 2; \
	done
