"""Settings both GeNAS experiments share (fixed before their pilots)."""

# The calibration gate: the recalibrated supernet's validation accuracy, averaged over the scored genotypes,
# must reach this (chance is 0.1), else every supernet proxy scores noise.
SUPERNET_MIN_ACC = 0.2

# The official BN recalibration (fresh shuffled batches of 64, momentum 0.1 after a reset) with the official
# 850 images (14 batches) keeps 0.9**14 = 23% of the reset statistics; on the 8x8 digits every sub-network
# then predicts one class (val acc 0.097 for every genotype in the first pilot, docs/experiments/genas.md). The presets
# keep the official protocol with 44 batches (0.9**44 = 1% of the reset left).
RECAL_IMAGES_DIGITS = 44 * 64
