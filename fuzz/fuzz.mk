# libFuzzer harnesses (placeholder until the harnesses land).
.PHONY: fuzz fuzz-smoke
fuzz fuzz-smoke:
	@echo "  FUZZ    no harnesses yet"
