# Loaded by Pants as a BUILD file prelude ([GLOBAL].build_file_prelude_globs): the one
# place that says which resolves a shared lib is built for. A new project adds its resolve
# to [python.resolves] in pants.toml and here.
TORCH_RESOLVES = ("mnist", "neuron-audit", "kv-serve", "rlhf")
ALL_RESOLVES = TORCH_RESOLVES + ("feature-selection",)
# Resolves that use the shared language-model lib (libs/lm).
LM_RESOLVES = ("neuron-audit", "kv-serve", "rlhf")
