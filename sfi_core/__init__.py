"""The core both halves share: frame counts, statuses, weights table, video and manifest IO, registries."""

import os

# Arrow allocates from the system allocator unless the user chose otherwise. A driver makes and drops
# thousands of small tables (a part per shard, then their merge) and pyarrow's default, mimalloc, kept
# their freed pages: at 10,000 inputs the filter's driver peaked at 212 MiB with it, 195 MiB without
# (173 MiB at 100 inputs). The variable is read when Arrow first allocates, so it is set on import,
# before pyarrow is used; set_memory_pool would not reach the Parquet reader's and writer's own buffers.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
