"""ECLIPS (Kim et al., CVPRW 2024): video-wise face anti-spoofing metrics and a Bayesian backbone ensemble."""
