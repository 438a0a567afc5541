"""Active learning for ASR with augmented consistency regularisation (Bang, Kim, Yoo, Ha, 2020).

A CTC acoustic model over characters, log-mel features and speech augmentations, acquisition
functions (random, least confidence, frame entropy, MC-dropout disagreement), a consistency
regularisation loss on pseudo-labels of unlabelled pool utterances, and a budgeted active-learning
loop with an oracle. See docs/activeasr.md.
"""

from reprozoo.activeasr import models  # noqa: F401  (registers ctc_crnn_*)
