"""Names of the two attention semantics a checkpoint can ask for (torch-free: config checks use it).

- "trained": the float ALiBi bias is added to the attention scores, as during EMOTE's training and
  in PyTorch's slow path. Our own models and the default of every checkpoint.
- "official-demo": what the official EMOTE demo computes under torch >= 2.0, whose fast path reads
  the float bias as a boolean mask (any non-zero entry blocked): a hard band.
"""

TRAINED = "trained"
OFFICIAL_DEMO = "official-demo"
ATTENTION_MODES = (TRAINED, OFFICIAL_DEMO)
