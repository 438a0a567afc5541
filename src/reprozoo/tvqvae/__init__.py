"""TVQ-VAE (Yoo & Choi, AAAI 2024): topic modelling on a VQ codebook of language-model token embeddings."""
