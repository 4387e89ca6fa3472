# upgate-sim (node/sim*.c), included by the Makefile: the program, its unit
# test's objects, and its row of `make bench`.

SIM_CORE_SRC := node/simspec.c node/simgeo.c node/simedit.c
SIM_SRC := node/sim.c node/simpop.c node/simrun.c node/simout.c node/simplot.c node/simsuggest.c $(SIM_CORE_SRC)
SIM_OBJ := $(SIM_SRC:%.c=$(OBJ)/%.o)
SIM_CORE_OBJ := $(SIM_CORE_SRC:%.c=$(OBJ)/%.o)
# The plugin's value parsers and GeoIP reader, linked in: the simulator reads
# flags and regions exactly as the policy does. The plugin itself is dlopen()ed.
SIM_PLUGIN_OBJ := $(OBJ)/plugin/policy/policy_values.o $(OBJ)/plugin/policy/geo.o $(OBJ)/plugin/policy/addr.o
LIBS_SIM = $(LIBS_PROTO) $(shell pkg-config --libs yaml-0.1 libmaxminddb jansson 2>/dev/null) -ldl -lm

PROGRAMS += $(BUILD)/upgate-sim

$(BUILD)/upgate-sim: $(SIM_OBJ) $(SIM_PLUGIN_OBJ) $(OBJ)/node/host.o $(OBJ)/node/capture.o $(OBJ)/node/buf.o $(NODE_COMMON_OBJ) $(PROTO_LIB)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_SIM)

# The unit suite links the pure parts (the plugin's objects are in every test already).
$(BUILD)/tests/test_sim_units: $(SIM_CORE_OBJ)

# One row: CPU per simulated decision, 1M peers over one day (goal 400 ns).
.PHONY: bench-sim
bench: bench-sim
bench-sim: all
	@UG_BUILD=$(abspath $(BUILD)) sh tests/bench_sim.sh

# --plot FILE.png converts the SVG with rsvg-convert; the tests draw one too.
DEB_PKGS += librsvg2-bin
