"""Continual pre-training and merging (paper 4): packed sequences, the Trainer run, SLERP merges,
scaling measurements.
"""
