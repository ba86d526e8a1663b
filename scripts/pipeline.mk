# Batch conversion: one target per checkpoint under SRC_DIR, so `make -jN` converts in parallel,
# `make -k` keeps going past a failure, and a re-run redoes only checkpoints whose files changed.
# Called by `make convert-all` (the top Makefile), which then writes the summary.
#
# Each entry of SRC_DIR (a checkpoint directory, or a single checkpoint file) becomes
# OUT_DIR/<name>/ (converted and verified), OUT_DIR/<name>.log, and OUT_DIR/<name>.stamp holding
# "ok <seconds>" or "failed <seconds>". The stamp is written either way, so an unchanged failed
# checkpoint is not retried; its failure stays in the summary (and in convert-all's exit status).
# Names with spaces are not supported (make cannot express them as targets).

SRC_DIR ?= $(error SRC_DIR is required)
OUT_DIR ?= $(error OUT_DIR is required)
TF2PT   ?= tf2pt
ATOL    ?=
RTOL    ?=
DTYPE   ?=
TOLERANCE := $(if $(ATOL),--atol $(ATOL)) $(if $(RTOL),--rtol $(RTOL))
PRECISION := $(if $(DTYPE),--dtype $(DTYPE))

NAMES  := $(notdir $(wildcard $(SRC_DIR)/*))
STAMPS := $(NAMES:%=$(OUT_DIR)/%.stamp)

.PHONY: convert sweep
convert: $(STAMPS)

# Once per batch, before any conversion: remove the hidden partial outputs that killed runs
# (e.g. OOM-killed) left in OUT_DIR. Live runs' directories are never touched.
sweep:
	@mkdir -p $(OUT_DIR)
	@$(TF2PT) sweep "$(OUT_DIR)"

.SECONDEXPANSION:
# A checkpoint is redone when any of its files is newer than its stamp.
$(OUT_DIR)/%.stamp: $$(shell find $(SRC_DIR)/$$* -type f 2>/dev/null) | sweep
	@start=$$(date +%s.%N); \
	if $(TF2PT) convert "$(SRC_DIR)/$*" "$(OUT_DIR)/$*" --force $(TOLERANCE) $(PRECISION) \
	    > "$(OUT_DIR)/$*.log" 2>&1; then status=ok; else status=failed; fi; \
	seconds=$$(echo "$$(date +%s.%N) $$start" | awk '{printf "%.3f", $$1 - $$2}'); \
	echo "$$status $$seconds" > $@; \
	if [ $$status = ok ]; then echo "ok      $*"; else \
	  rm -rf "$(OUT_DIR)/$*"; \
	  $(TF2PT) sweep "$(OUT_DIR)" >> "$(OUT_DIR)/$*.log" 2>&1; \
	  echo "FAILED  $*: $$(grep '^tf2pt: error:' "$(OUT_DIR)/$*.log" | tail -n 1)"; \
	  exit 1; \
	fi
