"""FineMed-de (paper 3): FineWeb2 German shards, the LLM labels and their human check, the labelled
set's split, the medical classifier, the corpus and its ablation sample.
"""
