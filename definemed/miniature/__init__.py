"""What the miniature is built from: the seeded German fixture corpus, fixture benchmarks and tiny
random-init models of the paper's architectures.
"""
